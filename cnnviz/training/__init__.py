"""Training and export with TensorFlow/Keras: imported only by `cnnviz train`, never on the app's path."""
