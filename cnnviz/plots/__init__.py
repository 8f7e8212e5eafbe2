"""Pure plotting functions: arrays in, plot objects out; no session state and no Panel."""
