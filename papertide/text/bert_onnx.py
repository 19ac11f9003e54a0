"""A lean onnxruntime graph for a BERT encoder, rebuilt from any exported BERT ONNX file.

Why: the all-MiniLM-L6-v2 file papertide runs (see :mod:`papertide.text.embed`) was
exported by PyTorch's dynamo exporter, whose attention is spelled out in ~30 small
operators per layer (mask arithmetic, ``IsNaN``/``Where`` guards, reshapes). Measured
here on 2 cores, that graph ran *slower* than PyTorch, and onnxruntime's own
transformer optimizer cannot fuse its attention. The weights are all a BERT needs, so
this module reads them out of the exported graph (by the Hugging Face parameter names
the exporter keeps on every bias and LayerNorm) and rebuilds the encoder from
onnxruntime's fused CPU kernels, the layout its optimizer produces for BERT:

    EmbedLayerNormalization -> per layer: Attention -> MatMul -> SkipLayerNormalization
                            -> MatMul -> BiasGelu -> MatMul -> SkipLayerNormalization

The rebuilt graph computes the same function (tests compare it with the original
graph: cosine > 0.99999 after pooling). :func:`quantize_int8` additionally turns the
dense layers into dynamically quantised int8 ones (onnxruntime.quantization), a
speed/quality trade-off that callers choose explicitly.
"""

from __future__ import annotations

import logging
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from papertide.errors import FormatError

_MS = "com.microsoft"
# "inner.encoder.layer.0.attention.self.query.bias" -> "encoder.layer.0.attention.self.query.bias"
_HF_NAME = re.compile(r"^.*?(?=(?:embeddings|encoder)\.)")


@dataclass(frozen=True)
class BertShape:
    """What the rebuilt graph needs to know beyond the weights (from the model's config.json)."""

    heads: int
    eps: float = 1e-12


def _hf_name(name: str) -> str:
    return _HF_NAME.sub("", name, count=1)


def _constant_folded(path: Path) -> "onnx.ModelProto":  # noqa: F821
    """The model after onnxruntime's basic optimisations: dequantisation and casts of
    constant weights folded into plain float initializers (works for fp32 and for
    weight-only-int8 exports alike)."""
    import onnx
    import onnxruntime as ort

    with tempfile.TemporaryDirectory(prefix="papertide-onnx-") as tmp:
        out = Path(tmp) / "folded.onnx"
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        so.optimized_model_filepath = str(out)
        ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        return onnx.load(str(out))


def extract_weights(path: Path) -> dict[str, np.ndarray]:
    """BERT weights by Hugging Face name (``encoder.layer.3.output.dense.weight``, …).

    Named initializers (biases, LayerNorms, embeddings) keep their names; a dense
    layer's weight is the constant input of the ``MatMul`` whose output is added to
    that layer's named bias. Weights come out as ``(in, out)`` matrices.
    """
    from onnx import numpy_helper

    graph = _constant_folded(path).graph
    init = {t.name: t for t in graph.initializer}
    producer = {out: node for node in graph.node for out in node.output}
    weights = {_hf_name(name): numpy_helper.to_array(t) for name, t in init.items()}
    for node in graph.node:
        if node.op_type != "Add":
            continue
        for bias, other in ((node.input[0], node.input[1]), (node.input[1], node.input[0])):
            mm = producer.get(other)
            if bias in init and bias.endswith(".bias") and mm is not None and mm.op_type == "MatMul":
                if mm.input[1] in init:
                    weights[_hf_name(bias)[: -len(".bias")] + ".weight"] = numpy_helper.to_array(init[mm.input[1]])
    return weights


def _layer_count(weights: dict[str, np.ndarray]) -> int:
    layers = {int(m.group(1)) for k in weights if (m := re.match(r"encoder\.layer\.(\d+)\.", k))}
    if not layers or layers != set(range(len(layers))):
        raise FormatError("no BERT encoder layers found in the ONNX graph")
    return len(layers)


def _required(weights: dict[str, np.ndarray], name: str) -> np.ndarray:
    try:
        return np.ascontiguousarray(weights[name], dtype=np.float32)
    except KeyError:
        raise FormatError(f"the ONNX graph has no BERT weight {name!r}; cannot rebuild it") from None


def build_graph(weights: dict[str, np.ndarray], shape: BertShape) -> "onnx.ModelProto":  # noqa: F821
    """A BERT encoder (inputs ``input_ids``, ``attention_mask``, ``token_type_ids``, int64,
    right-padded; output ``last_hidden_state``) from onnxruntime's fused kernels."""
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits = [], []

    def const(name: str, array: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(array, dtype=np.float32), name))
        return name

    def w(name: str) -> np.ndarray:
        return _required(weights, name)

    for src, dst in (("input_ids", "ids32"), ("token_type_ids", "types32"), ("attention_mask", "mask32")):
        nodes.append(helper.make_node("Cast", [src], [dst], to=TensorProto.INT32))
    e = "embeddings."
    nodes.append(helper.make_node(
        "EmbedLayerNormalization",
        ["ids32", "types32", const("word", w(e + "word_embeddings.weight")),
         const("position", w(e + "position_embeddings.weight")),
         const("token_type", w(e + "token_type_embeddings.weight")),
         const("emb_ln_g", w(e + "LayerNorm.weight")), const("emb_ln_b", w(e + "LayerNorm.bias")), "mask32"],
        ["h0", "mask_index"], domain=_MS, epsilon=shape.eps))
    layers = _layer_count(weights)
    h = "h0"
    for i in range(layers):
        p = f"encoder.layer.{i}."
        qkv = np.concatenate([w(p + f"attention.self.{x}.weight") for x in ("query", "key", "value")], axis=1)
        qkv_b = np.concatenate([w(p + f"attention.self.{x}.bias") for x in ("query", "key", "value")])
        out = "last_hidden_state" if i == layers - 1 else f"h{i + 1}"
        nodes += [
            helper.make_node("Attention", [h, const(f"qkv{i}", qkv), const(f"qkv_b{i}", qkv_b), "mask_index"],
                             [f"att{i}"], domain=_MS, num_heads=shape.heads),
            helper.make_node("MatMul", [f"att{i}", const(f"ao{i}", w(p + "attention.output.dense.weight"))],
                             [f"ao{i}_y"]),
            helper.make_node("SkipLayerNormalization",
                             [f"ao{i}_y", h, const(f"ln1_g{i}", w(p + "attention.output.LayerNorm.weight")),
                              const(f"ln1_b{i}", w(p + "attention.output.LayerNorm.bias")),
                              const(f"ao_b{i}", w(p + "attention.output.dense.bias"))],
                             [f"mid{i}"], domain=_MS, epsilon=shape.eps),
            helper.make_node("MatMul", [f"mid{i}", const(f"ffn_in{i}", w(p + "intermediate.dense.weight"))],
                             [f"ffn_in{i}_y"]),
            helper.make_node("BiasGelu", [f"ffn_in{i}_y", const(f"ffn_in_b{i}", w(p + "intermediate.dense.bias"))],
                             [f"gelu{i}"], domain=_MS),
            helper.make_node("MatMul", [f"gelu{i}", const(f"ffn_out{i}", w(p + "output.dense.weight"))],
                             [f"ffn_out{i}_y"]),
            helper.make_node("SkipLayerNormalization",
                             [f"ffn_out{i}_y", f"mid{i}", const(f"ln2_g{i}", w(p + "output.LayerNorm.weight")),
                              const(f"ln2_b{i}", w(p + "output.LayerNorm.bias")),
                              const(f"ffn_out_b{i}", w(p + "output.dense.bias"))],
                             [out], domain=_MS, epsilon=shape.eps),
        ]
        h = out
    hidden = weights["embeddings.word_embeddings.weight"].shape[1]
    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch", "sequence"])
              for n in ("input_ids", "attention_mask", "token_type_ids")]
    outputs = [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch", "sequence", hidden])]
    graph = helper.make_graph(nodes, "papertide-bert", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(_MS, 1)])
    model.ir_version = 8
    return model


def rebuild(path: Path, shape: BertShape) -> bytes:
    """The lean graph of the BERT ONNX file at ``path``, serialised."""
    return build_graph(extract_weights(path), shape).SerializeToString()


def quantize_int8(model: bytes) -> bytes:
    """Dynamic int8 quantisation of the dense layers outside attention (weights per
    output channel; activations per tensor, scaled per batch, so a text's vector varies
    slightly with the texts batched beside it). Attention and the embeddings stay float.

    Measured on all-MiniLM-L6-v2 here, cosine to the float model: 0.995 mean / 0.993 min
    on the demo papers, 0.993 / 0.986 on their titles. Quantising the attention
    projections too is ~10% faster but worse on short and unusual texts (0.974 on the
    empty string against 0.980).
    """
    from onnx import TensorProto
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory(prefix="papertide-onnx-") as tmp:
        src, dst = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        src.write_bytes(model)
        # The quantiser logs an advisory warning through the root logger on every call
        # ("consider pre-processing"): not actionable for users, so kept off their screen.
        logging.disable(logging.WARNING)
        try:
            quantize_dynamic(
                src, dst, weight_type=QuantType.QInt8, per_channel=True,
                op_types_to_quantize=["MatMul"],
                extra_options={"DefaultTensorType": TensorProto.FLOAT},  # fused ops carry no type info
            )
        finally:
            logging.disable(logging.NOTSET)
        return dst.read_bytes()
