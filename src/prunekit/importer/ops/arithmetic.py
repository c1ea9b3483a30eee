"""Add, Sub, Mul, Div, Sum, Max.

* two activations of one shape: Eltwise (SUM, SUM with coeff 1/−1 for Sub, PROD, MAX);
* an activation and a smaller one broadcast over it, e.g. squeeze-excitation's
  (N, C, 1, 1) · (N, C, H, W): the small one is reshaped to its leading non-1 axes (N, C) and a
  two-bottom Scale (Mul) or Bias (Add) from axis 0 applies it;
* an activation and a constant: Power for a scalar (x·c, x + c, x − c, c − x, x / c); a Scale
  or Bias layer holding the constant (spanning its non-1 axes) otherwise.
"""

from __future__ import annotations

import numpy as np

from prunekit.caffe import caffe_pb2

_EW = caffe_pb2.EltwiseParameter


def _binary(op: str):
    def handler(node, b, attrs: dict) -> None:
        a, c = node.input[0], node.input[1]
        ca, cc = b.const(a), b.const(c)
        if ca is None and cc is None:
            _two_activations(node, b, op)
        elif cc is not None:
            _with_constant(node, b, op, a, cc, constant_first=False)
        else:
            _with_constant(node, b, op, c, ca, constant_first=True)
    return handler


def _two_activations(node, b, op: str) -> None:
    a, c = node.input[0], node.input[1]
    out = b.shape(node.output[0])
    sa, sc = b.shape(a), b.shape(c)
    if sa == sc == out:
        _eltwise(node, b, op, [a, c])
        return
    if op in ("Mul", "Add") and (sa == out or sc == out):
        big, small = (a, c) if sa == out else (c, a)
        _broadcast(node, b, op, big, small)
        return
    raise b.error(f"{op} of shapes {list(sa)} and {list(sc)}: Caffe needs equal shapes, or "
                  "(Mul/Add) one operand broadcast over the other's leading axes")


def _eltwise(node, b, op: str, inputs: list[str]) -> None:
    lp = b.layer("Eltwise", [b.bottom(t) for t in inputs], outputs=[node.output[0]])
    ep = lp.eltwise_param
    ep.operation = {"Add": _EW.SUM, "Sum": _EW.SUM, "Sub": _EW.SUM, "Mul": _EW.PROD,
                    "Max": _EW.MAX}[op]
    if op == "Sub":
        ep.coeff.extend([1.0, -1.0])


def _broadcast(node, b, op: str, big: str, small: str) -> None:
    """Scale/Bias with bottom[1]: the small operand, reshaped to its leading non-1 axes, must
    equal the big one's leading axes (axis 0 on: the batch axis lines up)."""
    sb, ss = b.shape(big), b.shape(small)
    ss = (1,) * (len(sb) - len(ss)) + tuple(ss)
    span = max((i + 1 for i, d in enumerate(ss) if d != 1), default=0)
    if span == 0 or tuple(ss[:span]) != tuple(sb[:span]):
        raise b.error(f"{op} broadcasting {list(b.shape(small))} over {list(sb)}: Caffe's "
                      f"two-bottom {'Scale' if op == 'Mul' else 'Bias'} needs the small operand "
                      "to match the big one's leading axes (e.g. (N, C, 1, 1) over (N, C, H, W))")
    operand = b.bottom(small)
    if len(b.shape(small)) != span:
        if span == 2 and len(ss) >= 2:
            flat = b.layer("Flatten", [operand], suffix="_flatten")
        else:
            flat = b.layer("Reshape", [operand], suffix="_reshape")
            flat.reshape_param.shape.dim.extend([0] + [int(d) for d in ss[1:span]])
        operand = flat.top[0]
    lp = b.layer("Scale" if op == "Mul" else "Bias", [b.bottom(big), operand],
                 outputs=[node.output[0]])
    (lp.scale_param if op == "Mul" else lp.bias_param).axis = 0


def _with_constant(node, b, op: str, x: str, value: np.ndarray, constant_first: bool) -> None:
    if tuple(b.shape(node.output[0])) != tuple(b.shape(x)):
        raise b.error(f"the constant of shape {list(value.shape)} broadcasts the activation "
                      f"{list(b.shape(x))} to {list(b.shape(node.output[0]))}")
    value = value.astype(np.float64)
    if op == "Div":
        if constant_first:
            raise b.error("a constant divided by an activation has no Caffe layer")
        value = 1.0 / value
    if op == "Sub":
        value = -value if not constant_first else value
    if value.size == 1:
        _power(node, b, op, x, float(value.reshape(())), constant_first)
        return
    if op == "Sub" and constant_first:
        raise b.error("a constant minus an activation is supported for scalar constants only")
    _affine(node, b, "Scale" if op in ("Mul", "Div") else "Bias", x, value)


def _power(node, b, op: str, x: str, c: float, constant_first: bool) -> None:
    lp = b.layer("Power", [b.bottom(x)], outputs=[node.output[0]])
    pp = lp.power_param
    if op in ("Mul", "Div"):
        pp.scale = c
    elif op == "Sub" and constant_first:
        pp.scale, pp.shift = -1.0, c
    else:
        pp.shift = c


def _affine(node, b, type_: str, x: str, value: np.ndarray) -> None:
    """A Scale/Bias layer whose blob is the constant over its non-1 axes [first, last]."""
    shape = tuple(b.shape(x))
    padded = value.reshape((1,) * (len(shape) - value.ndim) + value.shape)
    non1 = [i for i, d in enumerate(padded.shape) if d != 1]
    first, last = non1[0], non1[-1] + 1
    if first == 0:
        raise b.error(f"the constant of shape {list(value.shape)} varies along the batch axis")
    region = np.broadcast_to(padded.reshape(padded.shape[first:last]), shape[first:last])
    lp = b.layer(type_, [b.bottom(x)], outputs=[node.output[0]])
    param = lp.scale_param if type_ == "Scale" else lp.bias_param
    param.axis, param.num_axes = first, last - first
    b.set_blobs(lp, [np.array(region, dtype=np.float32)])


def _variadic(op: str):
    def handler(node, b, attrs: dict) -> None:
        inputs = [t for t in node.input if t]
        if len(inputs) == 1:
            b.alias(node.output[0], b.bottom(inputs[0]))
            return
        out = tuple(b.shape(node.output[0]))
        if any(b.const(t) is not None or tuple(b.shape(t)) != out for t in inputs):
            raise b.error(f"{op} of constants or of differently shaped inputs")
        _eltwise(node, b, op, inputs)
    return handler


HANDLERS = {
    "Add": _binary("Add"), "Sub": _binary("Sub"), "Mul": _binary("Mul"), "Div": _binary("Div"),
    "Sum": _variadic("Sum"), "Max": _variadic("Max"),
}
