"""``--runtime onnx``: the model run by ONNX Runtime on the CPU instead of PyTorch.

On CPUs without native bf16 (AVX2 and most AVX-512 machines) PyTorch runs the model in fp32, and ONNX Runtime's
CPU kernels do the same work faster (docs/benchmarks.md, "ONNX Runtime on the CPU"). The model is exported once per
weights (:func:`geoseg.models.export.export_model`, about 20 s and 1.2 GB for a ResNet-18 model) into the cache
folder and reused by later runs; a cached file that no longer loads is exported again. The probabilities equal
PyTorch's fp32 ones to about 1e-5.

Only the forward pass changes: tiling, test-time augmentation, blending and vectorizing are the engine's own, so
:class:`OnnxModule` takes and returns torch tensors as a ``torch.nn.Module`` would.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from geoseg.errors import ConfigError, OutputError, PrecisionWarning

NATIVE_BF16 = ("this CPU has native bf16, where --runtime torch (bf16) is faster than --runtime onnx (fp32); "
               "drop --runtime onnx")
EXPORT_TAG = "opset18-v1"  # bump when the export changes, so that older cached files are not used


def cache_dir() -> Path:
    """Where exported models are kept: ``$GEOSEG_CACHE_DIR``, else ``$XDG_CACHE_HOME/geoseg``, else ``~/.cache/geoseg``."""
    if os.environ.get("GEOSEG_CACHE_DIR"):
        return Path(os.environ["GEOSEG_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "geoseg"


def check_runtime(runtime: str, device: str, precision: str) -> None:
    """One-line :class:`ConfigError` for what ONNX Runtime here cannot do: a GPU, or a precision other than fp32."""
    if runtime == "torch":
        return
    if runtime != "onnx":
        raise ConfigError(f"unknown runtime {runtime!r}; use torch or onnx")
    if device == "cuda":
        raise ConfigError("--runtime onnx runs on the CPU; on a GPU use --runtime torch (the default)")
    if precision not in ("auto", "fp32"):
        raise ConfigError(f"--runtime onnx runs in fp32, not {precision}; drop --precision or use --runtime torch")
    try:
        import onnxruntime  # noqa: F401 - the exporter's packages (onnx, onnxscript) are checked when it runs
    except ImportError:
        raise ConfigError("--runtime onnx needs ONNX Runtime: pip install 'geoseg[onnx]' "
                          "(or use --runtime torch, the default)") from None


def warn_if_slower(precision: str) -> None:
    """A :class:`PrecisionWarning` where PyTorch would be faster: a CPU with native bf16 (auto precision)."""
    from geoseg.engine.device import cpu_has_bf16

    if precision == "auto" and cpu_has_bf16():
        warnings.warn(NATIVE_BF16, PrecisionWarning, stacklevel=3)


def cached_onnx(card) -> Path:
    """The path of ``card``'s model as ONNX in the cache, exported first if it is not there (keyed by weights)."""
    from geoseg.models.export import export_model

    path = cache_dir() / "onnx" / f"{card.name}-{card.sha256[:16]}-{EXPORT_TAG}.onnx"
    if not path.is_file():
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(f"cannot create the cache folder {path.parent} for the ONNX model ({exc.strerror}); "
                              "set GEOSEG_CACHE_DIR to a writable folder") from None
        export_model(str(card.path), path)  # temp file, then rename
    return path


class OnnxModule:
    """Callable like the torch module: normalised float32 ``(N, C, Y, X)`` tensor in, logits tensor out."""

    def __init__(self, path: Path, threads: int | None = None):
        import onnxruntime as ort

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads or _torch_threads())
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3  # errors only: the CLI's stderr carries geoseg's own lines
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        self._input = self.session.get_inputs()[0].name

    def __call__(self, x):
        import numpy as np
        import torch

        arr = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
        return torch.from_numpy(self.session.run(None, {self._input: arr})[0])

    def to(self, *args, **kwargs):  # the Predictor moves modules; ONNX Runtime's session stays on the CPU
        return self

    def eval(self):
        return self


def onnx_module(card, threads: int | None = None) -> OnnxModule:
    """:class:`OnnxModule` for ``card``; a cached file that does not load (damaged) is exported again once."""
    from onnxruntime.capi.onnxruntime_pybind11_state import Fail, InvalidGraph, InvalidProtobuf, NoSuchFile

    path = cached_onnx(card)
    try:
        return OnnxModule(path, threads)
    except (Fail, InvalidGraph, InvalidProtobuf, NoSuchFile, OSError):  # ONNX Runtime's own types, not builtins
        path.unlink(missing_ok=True)
        return OnnxModule(cached_onnx(card), threads)


def _torch_threads() -> int:
    import torch

    return torch.get_num_threads()
