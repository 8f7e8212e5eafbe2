// The browser components under cnnviz/ (Panel ESM modules, and the scripts Python prepends to some of them).
import js from "@eslint/js";
import globals from "globals";

export default [
  js.configs.recommended,
  {
    files: ["cnnviz/**/*.js"],
    languageOptions: { ecmaVersion: 2022, sourceType: "module", globals: { ...globals.browser, deepQuery: "readonly" } },
    rules: { "no-unused-vars": ["error", { args: "none" }], eqeqeq: ["error", "smart"], "prefer-const": "error" },
  },
  {
    files: ["cnnviz/views/deep_query.js"], // a helper Python prepends to other modules: it defines, they use
    languageOptions: { sourceType: "script" },
    rules: { "no-unused-vars": ["error", { varsIgnorePattern: "^deepQuery$" }], "no-redeclare": "off" },
  },
  {
    files: ["cnnviz/notebook_no_echo.js"], // a script the notebook extension displays once
    languageOptions: { sourceType: "script" },
  },
  {
    files: ["cnnviz/views/elastic.js"], // the hand-drawn elastic view, being replaced (issue 15): report, don't fail
    rules: { "no-unused-vars": "warn" },
  },
];
