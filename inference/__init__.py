"""Serving saved multi-task models: input/output formats, PyTorch and ONNX Runtime back ends, batched prediction.

Nothing here is needed to load a model with `from_pretrained`; it is the library behind `predict.py` and
`export_onnx.py`. Submodules are imported on demand so that serving an ONNX export never imports torch model code.
"""
