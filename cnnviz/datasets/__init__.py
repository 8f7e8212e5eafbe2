"""Image sets for training your own model: a folder of class sub-folders, or shapes cnnviz draws itself.

NumPy and Pillow only, so the app (and Pyodide) can import them; TensorFlow stays in `cnnviz.training`.
"""
