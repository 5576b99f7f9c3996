"""ONNX export of a model's scoring graph: item ids (B, max_len) -> scores (B, n_items + 1).

The graph is the model's ``full_sort_predict`` on histories left-padded to ``max_len`` columns
(the batch size is free, the width is fixed). It is traced with PyTorch's TorchScript-based
exporter (opset 17) from an example that has padding, so the branch for padded rows is the one
recorded; that branch is also exact for rows without padding. Two operators need a translation
of their own, registered for the export only:

- the stable ``argsort`` of ``seqrec.nn.transformer.target_order``: ONNX ``TopK`` over all
  columns, which lists equal values by ascending index, so it is stable as ``argsort`` is;
- ``torch.eye`` (the causal mask): a float ``EyeLike`` cast to bool, which onnxruntime runs.

Every export is checked before it is kept: onnxruntime (CPU) must give PyTorch's scores within
``ATOL`` (fp32) for batches of several sizes and amounts of padding, with -inf at the same
places. A model whose graph does not export, or exports to something else (a model that
ignores its input and bakes the example's batch size in, as the popularity baseline does), is an
:class:`OnnxExportError` that says so.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from seqrec.batch import SequenceBatch
from seqrec.errors import SeqrecError

OPSET = 17
ATOL = 1e-4  # fp32: onnxruntime and PyTorch differ by ~1e-7 on the transformers here


class OnnxExportError(SeqrecError):
    """The model's scoring graph cannot be exported to ONNX faithfully."""


class ScoringGraph(nn.Module):
    """``full_sort_predict`` as a module of one tensor: item ids (B, L) -> scores (B, n + 1)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, item_seq: Tensor) -> Tensor:
        return self.model.full_sort_predict(SequenceBatch(item_seq=item_seq)).float()


def _stable_argsort(g, self, stable, dim, descending):  # the arguments of argsort.stable
    from torch.onnx import symbolic_helper as sh

    dim, descending = sh._get_const(dim, "i", "dim"), sh._get_const(descending, "i", "desc")
    values = g.op("Cast", self, to_i=1)  # float: TopK has no bool or uint8 kernel
    size = g.op("Gather", g.op("Shape", values), g.op("Constant", value_t=torch.tensor(dim)))
    k = g.op("Unsqueeze", size, g.op("Constant", value_t=torch.tensor([0])))
    _, indices = g.op("TopK", values, k, axis_i=dim, largest_i=descending, sorted_i=1, outputs=2)
    return indices


def _eye(g, n, *args):
    """``torch.eye(n[, m], dtype=...)``: a float EyeLike cast to the dtype (ORT has no bool one)."""
    from torch.onnx import symbolic_helper as sh
    from torch.onnx._internal.torchscript_exporter import _type_utils

    columns = args[0] if len(args) == 5 else n  # eye(n, m, dtype, ...) or eye(n, dtype, ...)
    axes = g.op("Constant", value_t=torch.tensor([0]))
    shape = g.op("Concat", g.op("Unsqueeze", n, axes), g.op("Unsqueeze", columns, axes), axis_i=0)
    zeros = g.op("ConstantOfShape", shape, value_t=torch.tensor([0.0]))
    dtype = sh._maybe_get_const(args[-4], "i")  # dtype, layout, device, pin_memory come last
    kind = _type_utils.JitScalarType(dtype if isinstance(dtype, int) else 6)  # 6: float
    return g.op("Cast", g.op("EyeLike", zeros), to_i=kind.onnx_type())


def example_inputs(n_items: int, max_len: int, batch: int, seed: int) -> Tensor:
    """Random histories (batch, max_len) with 0 .. max_len - 1 padding columns, row by row."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(1, n_items + 1, (batch, max_len), generator=gen)
    pad = torch.arange(batch) * max_len // max(batch, 1)  # (B,) padding columns per row
    return ids.masked_fill(torch.arange(max_len)[None, :] < pad[:, None], 0)


def _export(graph: ScoringGraph, path: Path, example: Tensor) -> None:
    from torch.onnx import register_custom_op_symbolic, unregister_custom_op_symbolic

    symbolics = {"aten::argsort": _stable_argsort, "aten::eye": _eye}
    for name, fn in symbolics.items():
        register_custom_op_symbolic(name, fn, OPSET)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes on Python values taken from tensors
            torch.onnx.export(
                graph, (example,), str(path), input_names=["item_seq"],
                output_names=["scores"], opset_version=OPSET, dynamo=False,
                dynamic_axes={"item_seq": {0: "batch"}, "scores": {0: "batch"}},
            )  # fmt: skip
    finally:
        for name in symbolics:
            unregister_custom_op_symbolic(name, OPSET)


def check_onnx(graph: ScoringGraph, path: Path, n_items: int, max_len: int) -> float:
    """Largest |onnxruntime - PyTorch| over several batches; raises if they disagree."""
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for batch, seed in ((1, 1), (5, 2), (2, 3)):
        ids = example_inputs(n_items, max_len, batch, seed)
        with torch.inference_mode():
            expected = graph(ids).numpy()
        try:
            got = session.run(None, {"item_seq": ids.numpy()})[0]
        except Exception as error:  # onnxruntime raises its own exception types
            raise OnnxExportError(f"onnxruntime cannot run the exported graph: {error}") from error
        finite = np.isfinite(expected)
        if got.shape != expected.shape or not np.array_equal(np.isfinite(got), finite):
            raise OnnxExportError(
                f"the exported graph gives scores of shape {got.shape} for a batch of {batch}, "
                f"PyTorch {expected.shape} (or -inf elsewhere)"
            )
        worst = max(worst, float(np.abs(got[finite] - expected[finite]).max(initial=0.0)))
    if worst > ATOL:
        raise OnnxExportError(f"onnxruntime differs from PyTorch by {worst:.3g} (> {ATOL})")
    return worst


def export_onnx(model: nn.Module, path: str | Path) -> float:
    """Write ``model``'s scoring graph to ``path`` and check it; returns the largest difference."""
    path = Path(path)
    name = type(model).__name__
    graph = ScoringGraph(model.cpu().eval()).eval()
    n_items, max_len = int(model.n_items), int(model.max_len)
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as error:
        raise OnnxExportError(
            "ONNX export needs onnx and onnxruntime: pip install 'seqrec[onnx]'"
        ) from error
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        draft = Path(tmp) / path.name
        try:
            _export(graph, draft, example_inputs(n_items, max_len, 3, 0))
            worst = check_onnx(graph, draft, n_items, max_len)
        except OnnxExportError as error:
            raise OnnxExportError(f"{name} cannot be exported to ONNX: {error}") from error
        except Exception as error:  # the exporter raises many kinds; all mean "not exportable"
            raise OnnxExportError(
                f"{name} cannot be exported to ONNX: {type(error).__name__}: {error}"
            ) from error
        draft.replace(path)
    return worst
