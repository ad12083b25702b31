"""Convert a PyTorch ``nn.Module`` to a pcmsim Network.

PyTorch is optional: it is imported when a conversion is asked for, never at ``import pcmsim``.

The module is traced with ``torch.fx`` (so residual adds and any forward() written with
torch.nn.functional calls work, not only nn.Sequential); every Linear, Conv2d, BatchNorm and
activation/pooling module (subclasses included, e.g. the zoo's AConv2d/ALinear) is kept as one
node. Supported:

- modules: Linear (over the last axis, any rank), Conv1d, Conv2d (zero, reflect or replicate
  padding, numeric or 'same'/'valid'), BatchNorm1d/2d (eval statistics), LayerNorm, Embedding,
  ReLU, ReLU6, LeakyReLU, Sigmoid, Tanh, GELU, SiLU, ELU, Hardtanh, Hardswish, Hardsigmoid,
  Softmax, LogSoftmax, MaxPool2d, AvgPool2d, AdaptiveAvgPool2d (any output size), Flatten,
  Dropout/Dropout1d/2d/3d, Identity;
- functions/methods: the same activations, pooling and normalisation from torch.nn.functional /
  torch / Tensor methods; torch.cat; flatten, view/reshape (any per-sample shape), transpose,
  permute; softmax/log_softmax over any axis; matmul / ``@`` / bmm of two activations (digital);
  ``+ - * /`` of two activations (broadcasting) or with a number; x.mean(dims); sqrt, erf,
  ``x ** p``; F.pad (constant, reflect, replicate); parameters used directly (a class token or
  position embedding: constant layers), expand of them; dropout, contiguous.

Anything else raises ``ValueError`` naming the node, so a model is never silently mis-converted.
The weights are the module's current (eval-mode) parameters, copied to float32.
"""
import operator

import numpy as np

__all__ = ["from_torch"]


def _pair(v):
    if isinstance(v, (tuple, list)):
        if len(v) == 1:
            return [int(v[0]), int(v[0])]
        return [int(v[0]), int(v[1])]
    return [int(v), int(v)]


def _f32(t):
    return np.ascontiguousarray(t.detach().cpu().numpy().astype(np.float32))


def _arg(node, index, name, default=None):
    if len(node.args) > index:
        return node.args[index]
    return node.kwargs.get(name, default)


class _Converter:
    def __init__(self, torch, pcmsim_module, gm=None):
        self.torch = torch
        self.gm = gm
        self.consts = {}  # fx node -> numpy value (parameters used directly, and expands of them)
        self.per_sample = set()  # nodes of consts whose value has no batch axis (expands)
        self.nn = torch.nn
        self.F = torch.nn.functional
        self.P = pcmsim_module
        self.layers = []
        self.names = set()
        self.value = {}  # fx node -> layer index (-1 = network input)

    # ---- helpers
    def unique(self, name):
        name = name.replace("/", ".")
        base, k = name, 1
        while name in self.names:
            name = f"{base}_{k}"
            k += 1
        self.names.add(name)
        return name

    def source(self, node, arg, like=None):
        if hasattr(arg, "op") and arg in self.consts and arg not in self.value:
            self.constant_layer(node, arg)
        if not hasattr(arg, "op") or arg not in self.value:
            raise ValueError(f"[pcmsim.torch_convert] node '{node.name}': input {arg!r} is not a "
                             "tensor computed by a supported layer")
        return self.value[arg]

    def add(self, node, name, kind, inputs, **fields):
        layer = self.P.Layer(name=self.unique(name), kind=kind,
                             inputs=[self.source(node, a) for a in inputs])
        for k, v in fields.items():
            setattr(layer, k, v)
        self.layers.append(layer)
        self.value[node] = len(self.layers) - 1

    def alias(self, node, arg):
        self.value[node] = self.source(node, arg)

    def constant_layer(self, node, arg):
        """A parameter (or an expand of one) used as a tensor: a constant layer holding its
        per-sample value; a leading axis of 1 is the batch axis (broadcasting is unchanged)."""
        v = self.consts[arg]
        if arg not in self.per_sample and v.ndim >= 2 and v.shape[0] == 1:
            v = v[0]
        if v.ndim == 0:
            v = v.reshape(1)
        layer = self.P.Layer(name=self.unique(str(arg.name)), kind="constant", inputs=[],
                             weight=np.ascontiguousarray(v, dtype=np.float32))
        self.layers.append(layer)
        self.value[arg] = len(self.layers) - 1

    @staticmethod
    def shape(node):
        meta = node.meta.get("tensor_meta")
        return tuple(meta.shape) if meta is not None and hasattr(meta, "shape") else None

    # ---- modules
    def module(self, node, m):
        nn = self.nn
        x = node.args[0] if node.args else None
        name = node.target
        if isinstance(m, nn.Linear):
            fields = dict(in_features=m.in_features, out_features=m.out_features,
                          weight=_f32(m.weight))
            if m.bias is not None:
                fields["bias"] = _f32(m.bias)
            return self.add(node, name, "linear", [x], **fields)
        if isinstance(m, (nn.Conv1d, nn.Conv2d)):
            return self.conv(node, name, x, m)
        if isinstance(m, nn.LayerNorm):
            fields = dict(shape=[int(v) for v in m.normalized_shape], eps=float(m.eps))
            if m.elementwise_affine:
                fields["weight"] = _f32(m.weight)
                fields["bias"] = _f32(m.bias)
            return self.add(node, name, "layernorm", [x], **fields)
        if isinstance(m, nn.Embedding):
            if m.max_norm is not None:
                raise ValueError(f"[pcmsim.torch_convert] {name}: Embedding max_norm is not "
                                 "supported")
            return self.add(node, name, "embedding", [x], num_embeddings=m.num_embeddings,
                            embedding_dim=m.embedding_dim, weight=_f32(m.weight))
        if isinstance(m, (nn.Softmax, nn.LogSoftmax)):
            kind = "softmax" if isinstance(m, nn.Softmax) else "log_softmax"
            return self.softmax(node, name, x, kind, m.dim)
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            if m.running_mean is None or m.running_var is None:
                raise ValueError(f"[pcmsim.torch_convert] {name}: BatchNorm without running "
                                 "statistics (track_running_stats=False) is not supported")
            kind = "batchnorm2d" if isinstance(m, nn.BatchNorm2d) else "batchnorm1d"
            fields = dict(num_features=m.num_features, eps=float(m.eps),
                          running_mean=_f32(m.running_mean), running_var=_f32(m.running_var))
            if m.affine:
                fields["weight"] = _f32(m.weight)
                fields["bias"] = _f32(m.bias)
            return self.add(node, name, kind, [x], **fields)
        # ReLU6 is a Hardtanh subclass: test it first.
        simple = [(nn.ReLU6, "relu6"), (nn.ReLU, "relu"), (nn.Sigmoid, "sigmoid"),
                  (nn.Tanh, "tanh"), (nn.SiLU, "silu"), (nn.Hardswish, "hardswish"),
                  (nn.Hardsigmoid, "hardsigmoid")]
        for cls, kind in simple:
            if isinstance(m, cls):
                return self.add(node, name, kind, [x])
        if isinstance(m, nn.LeakyReLU):
            return self.add(node, name, "leaky_relu", [x], negative_slope=float(m.negative_slope))
        if isinstance(m, nn.ELU):
            return self.add(node, name, "elu", [x], alpha=float(m.alpha))
        if isinstance(m, nn.Hardtanh):
            return self.add(node, name, "hardtanh", [x], min_val=float(m.min_val),
                            max_val=float(m.max_val))
        if isinstance(m, nn.GELU):
            return self.add(node, name, "gelu", [x],
                            gelu_tanh=getattr(m, "approximate", "none") == "tanh")
        if isinstance(m, nn.MaxPool2d):
            if m.return_indices:
                raise ValueError(f"[pcmsim.torch_convert] {name}: return_indices=True")
            return self.maxpool(node, name, x, m.kernel_size, m.stride, m.padding, m.dilation,
                                m.ceil_mode)
        if isinstance(m, nn.AvgPool2d):
            return self.avgpool(node, name, x, m.kernel_size, m.stride, m.padding, m.ceil_mode,
                                m.count_include_pad, m.divisor_override)
        if isinstance(m, nn.AdaptiveAvgPool2d):
            return self.adaptive_avg(node, name, x, m.output_size)
        if isinstance(m, nn.Flatten):
            return self.flatten(node, name, x, m.start_dim, m.end_dim)
        if isinstance(m, (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
                          nn.Identity)):
            return self.alias(node, x)
        raise ValueError(f"[pcmsim.torch_convert] module '{name}' of type {type(m).__name__} "
                         "is not supported")

    def axis(self, node, x, dim):
        """A PyTorch dim of the batched tensor -> the per-sample axis (negative stays)."""
        if dim is None:
            raise ValueError(f"[pcmsim.torch_convert] node '{node.name}': dim=None (over the "
                             "whole batch) is not supported")
        dim = int(dim)
        if dim < 0:
            return dim
        if dim == 0:
            raise ValueError(f"[pcmsim.torch_convert] node '{node.name}': operates on the batch "
                             "dimension 0 (samples must stay independent)")
        return dim - 1

    def conv(self, node, name, x, m):
        one_d = isinstance(m, self.nn.Conv1d)
        k = [int(m.kernel_size[0])] if one_d else _pair(m.kernel_size)
        d = [int(m.dilation[0])] if one_d else _pair(m.dilation)
        padding = m.padding
        if isinstance(padding, str):
            if padding == "valid":
                before = after = [0] * len(k)
            else:  # 'same': PyTorch puts the odd pixel after (stride 1)
                total = [di * (ki - 1) for di, ki in zip(d, k)]
                before = [t // 2 for t in total]
                after = [t - b for t, b in zip(total, before)]
        else:
            before = after = [int(padding[0])] if one_d else _pair(padding)
        src = x
        mode = m.padding_mode
        if mode not in ("zeros", "reflect", "replicate"):
            raise ValueError(f"[pcmsim.torch_convert] {name}: padding_mode '{mode}' (zeros, "
                             "reflect or replicate)")
        conv_pad = before
        if mode != "zeros" or before != after:
            pads = []
            for b, a in zip(before, after):
                pads += [b, a]
            if any(pads):
                self.add(node, name + ".pad", "pad", [x], pads=pads,
                         pad_mode="constant" if mode == "zeros" else mode)
                src = None
            conv_pad = [0] * len(k)
        inputs = [x] if src is not None else []
        fields = dict(in_channels=m.in_channels, out_channels=m.out_channels, groups=m.groups,
                      weight=_f32(m.weight))
        if one_d:
            fields.update(kernel_size=[1, k[0]], stride=[1, int(m.stride[0])],
                          padding=[0, conv_pad[0]], dilation=[1, d[0]])
        else:
            fields.update(kernel_size=k, stride=_pair(m.stride), padding=conv_pad, dilation=d)
        if m.bias is not None:
            fields["bias"] = _f32(m.bias)
        kind = "conv1d" if one_d else "conv2d"
        if src is None:  # fed by the pad layer just added
            layer = self.P.Layer(name=self.unique(name), kind=kind,
                                 inputs=[len(self.layers) - 1])
            for key, v in fields.items():
                setattr(layer, key, v)
            self.layers.append(layer)
            self.value[node] = len(self.layers) - 1
            return None
        return self.add(node, name, kind, inputs, **fields)

    def softmax(self, node, name, x, kind, dim):
        return self.add(node, name, kind, [x], axis=self.axis(node, x, dim))

    def pad(self, node, name, x, pad, mode, value):
        if mode not in ("constant", "reflect", "replicate"):
            raise ValueError(f"[pcmsim.torch_convert] node '{name}': pad mode '{mode}' "
                             "(constant, reflect or replicate)")
        pad = [int(v) for v in pad]
        pads = []
        for i in range(len(pad) // 2 - 1, -1, -1):  # F.pad lists the last axis first
            pads += [pad[2 * i], pad[2 * i + 1]]
        return self.add(node, name, "pad", [x], pads=pads, pad_mode=mode,
                        pad_value=float(value or 0.0))

    def arithmetic(self, node, name, op, a, b):
        """a (op) b: two tensors (broadcasting, digital) or a tensor and a number (a scale
        layer)."""
        ta, tb = hasattr(a, "op"), hasattr(b, "op")
        if ta and tb:
            return self.add(node, name, op, [a, b])
        if not (ta or tb) or not all(isinstance(v, (int, float)) or hasattr(v, "op")
                                     for v in (a, b)):
            raise ValueError(f"[pcmsim.torch_convert] node '{name}': {op} of {a!r} and {b!r} "
                             "(tensors or numbers only)")
        x, c, swapped = (a, float(b), False) if ta else (b, float(a), True)
        if op == "add":
            return self.add(node, name, "scale", [x], shift=c)
        if op == "sub":
            return self.add(node, name, "scale", [x], scale=-1.0 if swapped else 1.0,
                            shift=c if swapped else -c)
        if op == "mul":
            return self.add(node, name, "scale", [x], scale=c)
        if op == "div" and not swapped:
            if c == 0:
                raise ValueError(f"[pcmsim.torch_convert] node '{name}': division by zero")
            return self.add(node, name, "scale", [x], scale=1.0 / c)
        raise ValueError(f"[pcmsim.torch_convert] node '{name}': a number divided by a tensor "
                         "is not supported")

    def maxpool(self, node, name, x, k, s, p, d, ceil_mode):
        k = _pair(k)
        s = _pair(s) if s not in (None, [], ()) else k
        return self.add(node, name, "maxpool2d", [x], kernel_size=k, stride=s, padding=_pair(p),
                        dilation=_pair(d), ceil_mode=bool(ceil_mode))

    def avgpool(self, node, name, x, k, s, p, ceil_mode, count_include_pad, divisor_override):
        if divisor_override is not None:
            raise ValueError(f"[pcmsim.torch_convert] {name}: divisor_override is not supported")
        k = _pair(k)
        s = _pair(s) if s not in (None, [], ()) else k
        return self.add(node, name, "avgpool2d", [x], kernel_size=k, stride=s, padding=_pair(p),
                        ceil_mode=bool(ceil_mode), count_include_pad=bool(count_include_pad))

    def adaptive_avg(self, node, name, x, output_size):
        out = (_pair(output_size) if output_size is not None and None not in
               (output_size if isinstance(output_size, (tuple, list)) else [output_size])
               else None)
        if out == [1, 1]:
            return self.add(node, name, "global_avgpool", [x])
        in_shape = self.shape(x)
        if in_shape is not None and out is not None and list(in_shape[-2:]) == out:
            return self.alias(node, x)
        if in_shape is None or len(in_shape) != 4:
            raise ValueError(f"[pcmsim.torch_convert] {name}: adaptive average pooling of a "
                             f"{in_shape} tensor (only (N, C, H, W))")
        out = [int(in_shape[2 + i]) if v is None else int(v)
               for i, v in enumerate(output_size if isinstance(output_size, (tuple, list))
                                     else (output_size, output_size))]
        return self.add(node, name, "adaptive_avgpool2d", [x], output_size=out)

    def flatten(self, node, name, x, start_dim=1, end_dim=-1):
        return self.add(node, name, "flatten", [x], start_dim=self.axis(node, x, start_dim),
                        end_dim=self.axis(node, x, end_dim))

    # ---- functions and methods
    def function(self, node):
        F, torch = self.F, self.torch
        t = node.target
        name = node.name
        x = node.args[0] if node.args else None
        simple = {
            F.relu: "relu", torch.relu: "relu", torch.relu_: "relu", F.relu6: "relu6",
            torch.sigmoid: "sigmoid", F.sigmoid: "sigmoid", torch.tanh: "tanh", F.tanh: "tanh",
            F.silu: "silu", F.hardswish: "hardswish", F.hardsigmoid: "hardsigmoid",
        }
        if node.op == "call_method":
            methods = {"relu": "relu", "relu_": "relu", "sigmoid": "sigmoid", "tanh": "tanh"}
            if t in methods:
                return self.add(node, name, methods[t], [x])
            if t in ("size", "dim"):
                return None  # a shape used by view()/reshape(); not a tensor
            if t in ("contiguous", "clone", "detach"):
                return self.alias(node, x)
            if t in ("view", "reshape", "unsqueeze", "squeeze"):
                return self.reshape(node, name, x)
            if t in ("long", "int", "float", "to"):
                return self.alias(node, x)  # pcmsim's values are float32; ids are integers
            if t in ("transpose", "permute"):
                return self.permute(node, name, x, t)
            if t in ("softmax", "log_softmax"):
                return self.softmax(node, name, x, t, _arg(node, 1, "dim"))
            if t in ("mul", "mul_", "sub", "div", "truediv"):
                op = {"mul_": "mul", "truediv": "div"}.get(t, t)
                return self.arithmetic(node, name, op, x, _arg(node, 1, "other"))
            if t in ("matmul", "bmm"):
                return self.add(node, name, "matmul", [x, _arg(node, 1, "other")])
            if t == "expand":
                return self.expand(node, x)
            if t in ("sqrt", "erf"):
                return self.add(node, name, t, [x])
            if t == "pow":
                return self.power(node, name, x, _arg(node, 1, "exponent"))
            if t == "flatten":
                return self.flatten(node, name, x, _arg(node, 1, "start_dim", 0),
                                    _arg(node, 2, "end_dim", -1))
            if t == "mean":
                return self.mean(node, name, x, _arg(node, 1, "dim"), _arg(node, 2, "keepdim",
                                                                           False))
            if t in ("add", "add_"):
                return self.residual_add(node, name, [x, _arg(node, 1, "other")],
                                         node.kwargs.get("alpha", 1))
            if t in ("size", "dim"):
                return None
            raise ValueError(f"[pcmsim.torch_convert] node '{name}': method .{t}() is not "
                             "supported")
        if t in simple:
            return self.add(node, name, simple[t], [x])
        if t is F.leaky_relu:
            return self.add(node, name, "leaky_relu", [x],
                            negative_slope=float(_arg(node, 1, "negative_slope", 0.01)))
        if t is F.elu:
            return self.add(node, name, "elu", [x], alpha=float(_arg(node, 1, "alpha", 1.0)))
        if t is F.hardtanh:
            return self.add(node, name, "hardtanh", [x],
                            min_val=float(_arg(node, 1, "min_val", -1.0)),
                            max_val=float(_arg(node, 2, "max_val", 1.0)))
        if t is F.gelu:
            return self.add(node, name, "gelu", [x],
                            gelu_tanh=node.kwargs.get("approximate", "none") == "tanh")
        if t is F.max_pool2d or t is torch.max_pool2d:
            if _arg(node, 6, "return_indices", False):
                raise ValueError(f"[pcmsim.torch_convert] {name}: return_indices=True")
            return self.maxpool(node, name, x, _arg(node, 1, "kernel_size"),
                                _arg(node, 2, "stride"), _arg(node, 3, "padding", 0),
                                _arg(node, 4, "dilation", 1), _arg(node, 5, "ceil_mode", False))
        if t is F.avg_pool2d:
            return self.avgpool(node, name, x, _arg(node, 1, "kernel_size"),
                                _arg(node, 2, "stride"), _arg(node, 3, "padding", 0),
                                _arg(node, 4, "ceil_mode", False),
                                _arg(node, 5, "count_include_pad", True),
                                _arg(node, 6, "divisor_override"))
        if t is F.adaptive_avg_pool2d:
            return self.adaptive_avg(node, name, x, _arg(node, 1, "output_size"))
        if t is torch.flatten:
            return self.flatten(node, name, x, _arg(node, 1, "start_dim", 0),
                                _arg(node, 2, "end_dim", -1))
        if t is torch.mean:
            return self.mean(node, name, x, _arg(node, 1, "dim"), _arg(node, 2, "keepdim", False))
        if t in (operator.add, operator.iadd, torch.add):
            return self.residual_add(node, name, [x, _arg(node, 1, "other")],
                                     node.kwargs.get("alpha", 1))
        arith = {operator.sub: "sub", torch.sub: "sub", operator.mul: "mul", torch.mul: "mul",
                 operator.imul: "mul", operator.truediv: "div", torch.div: "div"}
        if t in arith:
            return self.arithmetic(node, name, arith[t], x, _arg(node, 1, "other"))
        if t in (operator.matmul, torch.matmul, torch.bmm):
            for a in (x, node.args[1] if len(node.args) > 1 else None):
                if not hasattr(a, "op"):
                    raise ValueError(f"[pcmsim.torch_convert] node '{name}': matmul of {a!r}")
            return self.add(node, name, "matmul", [x, node.args[1]])
        if t in (torch.cat, torch.concat):
            tensors = list(x)
            return self.add(node, name, "concat", tensors,
                            axis=self.axis(node, tensors[0], _arg(node, 1, "dim", 0)))
        if t in (F.softmax, torch.softmax, F.log_softmax, torch.log_softmax):
            kind = "softmax" if t in (F.softmax, torch.softmax) else "log_softmax"
            return self.softmax(node, name, x, kind, _arg(node, 1, "dim"))
        if t is F.layer_norm:
            shape = _arg(node, 1, "normalized_shape")
            w, b = _arg(node, 2, "weight"), _arg(node, 3, "bias")
            fields = dict(shape=[int(v) for v in shape], eps=float(_arg(node, 4, "eps", 1e-5)))
            for key, v in (("weight", w), ("bias", b)):
                if v is not None:
                    if v not in self.consts:
                        raise ValueError(f"[pcmsim.torch_convert] node '{name}': layer_norm "
                                         f"{key} must be a parameter")
                    fields[key] = np.asarray(self.consts[v], dtype=np.float32)
            return self.add(node, name, "layernorm", [x], **fields)
        if t is F.pad:
            return self.pad(node, name, x, _arg(node, 1, "pad"), _arg(node, 2, "mode", "constant"),
                            _arg(node, 3, "value", 0.0))
        if t in (torch.reshape, torch.unsqueeze, torch.squeeze):
            return self.reshape(node, name, x)
        if t in (torch.transpose, torch.permute):
            return self.permute(node, name, x, "transpose" if t is torch.transpose else "permute")
        if t in (torch.sqrt, torch.erf):
            return self.add(node, name, "sqrt" if t is torch.sqrt else "erf", [x])
        if t in (operator.pow, torch.pow):
            return self.power(node, name, x, _arg(node, 1, "exponent"))
        if t in (F.dropout, F.dropout1d, F.dropout2d, F.dropout3d):
            return self.alias(node, x)
        if t is getattr and len(node.args) == 2 and node.args[1] == "shape":
            return None  # a shape used by view(); not a tensor
        if t is operator.getitem and node.args and node.args[0] not in self.value:
            return None  # indexing a shape
        raise ValueError(f"[pcmsim.torch_convert] node '{name}': function "
                         f"{getattr(t, '__name__', t)} is not supported")

    def residual_add(self, node, name, args, alpha):
        if alpha != 1:
            raise ValueError(f"[pcmsim.torch_convert] node '{name}': add with alpha={alpha}")
        if not all(hasattr(a, "op") for a in args):
            return self.arithmetic(node, name, "add", *args)
        return self.add(node, name, "add", args)

    def reshape(self, node, name, x):
        in_shape, out_shape = self.shape(x), self.shape(node)
        if in_shape is None or out_shape is None or len(out_shape) < 2 \
                or out_shape[0] != in_shape[0]:
            raise ValueError(f"[pcmsim.torch_convert] node '{name}': only reshapes that keep the "
                             "batch dimension first are supported")
        if tuple(out_shape) == tuple(in_shape):
            return self.alias(node, x)
        return self.add(node, name, "reshape", [x], shape=[int(v) for v in out_shape[1:]])

    def permute(self, node, name, x, how):
        in_shape = self.shape(x)
        rank = len(in_shape)
        if how == "transpose":
            a, b = (int(v) % rank for v in (_arg(node, 1, "dim0"), _arg(node, 2, "dim1")))
            perm = list(range(rank))
            perm[a], perm[b] = perm[b], perm[a]
        else:
            dims = node.args[1:] if len(node.args) > 2 else _arg(node, 1, "dims")
            perm = [int(v) % rank for v in dims]
        if perm[0] != 0:
            raise ValueError(f"[pcmsim.torch_convert] node '{name}': moves the batch dimension")
        if perm == list(range(rank)):
            return self.alias(node, x)
        return self.add(node, name, "transpose", [x], perm=[p - 1 for p in perm[1:]])

    def expand(self, node, x):
        out = self.shape(node)
        if x in self.consts:
            v = self.consts[x]
            v = v[0] if v.ndim == len(out) and v.shape[0] == 1 else v
            self.consts[node] = np.broadcast_to(v, tuple(out[1:])).copy()
            self.per_sample.add(node)
            return None
        if tuple(self.shape(x)) == tuple(out):
            return self.alias(node, x)
        raise ValueError(f"[pcmsim.torch_convert] node '{node.name}': expand of an activation")

    def power(self, node, name, x, exponent):
        if not hasattr(x, "op") or not isinstance(exponent, (int, float)):
            raise ValueError(f"[pcmsim.torch_convert] node '{name}': only tensor ** number")
        return self.add(node, name, "pow", [x], exponent=float(exponent))

    def mean(self, node, name, x, dim, keepdim):
        in_shape = self.shape(x)
        if in_shape is None or dim is None:
            raise ValueError(f"[pcmsim.torch_convert] node '{name}': mean over all dimensions "
                             "(the batch included)")
        rank = len(in_shape)
        dims = sorted(d % rank for d in (dim if isinstance(dim, (list, tuple)) else [dim]))
        if rank == 4 and dims == [2, 3]:  # global average pooling (the fast image path)
            self.add(node, name, "global_avgpool", [x])
            if not keepdim:
                self.names.add(name + ".flatten")
                layer = self.P.Layer(name=name + ".flatten", kind="flatten",
                                     inputs=[len(self.layers) - 1])
                self.layers.append(layer)
                self.value[node] = len(self.layers) - 1
            return None
        return self.add(node, name, "reduce_mean", [x],
                        axes=[self.axis(node, x, d) for d in dims], keepdims=bool(keepdim))


def _first_layer_expects(gm, nn):
    """What the first weighted layer of the traced module needs of ``input_shape`` (C, H, W),
    as a phrase, or None when it has none of Linear, Conv2d or BatchNorm."""
    flattened = False
    for node in gm.graph.nodes:
        if node.op in ("call_function", "call_method") and (
                getattr(node.target, "__name__", node.target) in ("flatten", "view",
                                                                   "reshape")):
            flattened = True
        if node.op != "call_module":
            continue
        m = gm.get_submodule(node.target)
        kind = type(m).__name__
        if isinstance(m, nn.Flatten):
            flattened = True
        elif isinstance(m, nn.Conv2d):
            kh, kw = (d * (k - 1) + 1 for d, k in zip(_pair(m.dilation), _pair(m.kernel_size)))
            ph, pw = _pair(m.padding) if not isinstance(m.padding, str) else (0, 0)
            return (f"the first layer '{node.target}' ({kind}) expects {m.in_channels} input "
                    f"channel{'s' if m.in_channels != 1 else ''}, i.e. input_shape = "
                    f"({m.in_channels}, H, W) with H >= {max(1, kh - 2 * ph)} and "
                    f"W >= {max(1, kw - 2 * pw)}")
        elif isinstance(m, nn.Linear):
            where = ("C*H*W of input_shape, flattened" if flattened else
                     "the last dimension W of input_shape, or C*H*W if the module flattens")
            return (f"the first layer '{node.target}' ({kind}) expects {m.in_features} input "
                    f"features ({where})")
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            return (f"the first layer '{node.target}' ({kind}) expects {m.num_features} "
                    f"channels (input_shape[0])")
    return None


def from_torch(module, input_shape, *, num_classes=None, input_mean=None, input_std=None,
               name=None, class_names=None):
    """Converts ``module`` (a torch.nn.Module taking (N, C, H, W) images, (N, C, L) sequences or
    (N, F) features) to a pcmsim Network.

    input_shape: (C, H, W) of one input image, or (C, L), or (F) (stored as (C, 1, L) and
    (1, 1, F), the network starting with a reshape). input_mean / input_std: the per-channel
    normalisation the data-set readers apply (default 0 / 1: the module receives the pixels in
    [0, 1] unchanged). name: the network's name (default: the module's class name).
    class_names: optional list. num_classes: checked against the module's output if given.
    The module is put in eval() mode (batch-norm running statistics, no dropout).

    Returns a validated pcmsim.Network whose FP32 forward (pcmsim.fp32_logits) reproduces the
    module's logits up to float32 summation order. Raises ValueError naming the first
    unsupported node or an ``input_shape`` the module cannot take (with what its first layer
    expects), ImportError when PyTorch is not installed.
    """
    try:
        import torch
        import torch.fx as fx
        from torch.fx.passes.shape_prop import ShapeProp
    except ImportError as e:  # pragma: no cover - depends on the installation
        raise ImportError("pcmsim.torch_convert needs PyTorch (pip/apt install torch)") from e
    from . import _pcmsim

    nn = torch.nn
    leaf_types = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm,
                  nn.Embedding, nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.Sigmoid, nn.Tanh, nn.GELU,
                  nn.SiLU, nn.ELU, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softmax,
                  nn.LogSoftmax, nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.Flatten,
                  nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
                  nn.Identity)

    class Tracer(fx.Tracer):
        def is_leaf_module(self, m, qualname):
            return isinstance(m, leaf_types) or super().is_leaf_module(m, qualname)

    given = input_shape
    try:
        input_shape = tuple(int(v) for v in input_shape)
    except (TypeError, ValueError):
        raise ValueError(f"[pcmsim.torch_convert] input_shape = {given!r}: expected (C, H, W), "
                         "(C, L) or (F), positive integers") from None
    if not 1 <= len(input_shape) <= 3 or min(input_shape) < 1:
        raise ValueError(f"[pcmsim.torch_convert] input_shape = {input_shape}: expected (C, H, W),"
                         " (C, L) or (F)")
    module.eval()
    graph = Tracer().trace(module)
    gm = fx.GraphModule(module, graph)
    gm.graph.eliminate_dead_code()
    gm.recompile()
    example = torch.zeros((2,) + input_shape, dtype=torch.float32)
    # Run the module once on its own first: an input_shape it cannot take fails here with
    # torch's own message (ShapeProp would print a traceback and raise a bare RuntimeError).
    try:
        with torch.no_grad():
            gm(example)
    except Exception as e:  # noqa: BLE001 - any failure of the forward on this input
        expects = _first_layer_expects(gm, nn)
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(
            f"[pcmsim.torch_convert] input_shape = {input_shape} does not fit the module: "
            f"its forward on a batch of shape {tuple(example.shape)} failed ({reason})"
            + (f"; {expects}" if expects else "")) from e
    with torch.no_grad():
        ShapeProp(gm).propagate(example)

    conv = _Converter(torch, _pcmsim, gm)
    out_node = None
    placeholders = 0
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            placeholders += 1
            if placeholders > 1:
                raise ValueError("[pcmsim.torch_convert] the module takes more than one input")
            conv.value[node] = -1
            if len(input_shape) != 3:  # the network input is (C, H, W): (C, 1, L) or (1, 1, F)
                conv.names.add("input_reshape")
                conv.layers.append(_pcmsim.Layer(name="input_reshape", kind="reshape",
                                                 inputs=[-1], shape=list(input_shape)))
                conv.value[node] = 0
        elif node.op == "call_module":
            conv.module(node, gm.get_submodule(node.target))
        elif node.op in ("call_function", "call_method"):
            conv.function(node)
        elif node.op == "get_attr":
            value = gm
            for part in node.target.split("."):
                value = getattr(value, part)
            conv.consts[node] = value.detach().cpu().numpy().astype(np.float32)
        elif node.op == "output":
            out_node = node.args[0]
    if out_node is None or out_node not in conv.value:
        raise ValueError("[pcmsim.torch_convert] the module's output is not a single tensor")
    last = conv.value[out_node]
    if last == -1:
        raise ValueError("[pcmsim.torch_convert] the module has no layers")
    if last != len(conv.layers) - 1:
        conv.layers.append(_pcmsim.Layer(name=conv.unique("output"), kind="identity",
                                         inputs=[last]))
    out_shape = _Converter.shape(out_node)
    if out_shape is None or len(out_shape) != 2:
        raise ValueError(f"[pcmsim.torch_convert] the module's output has shape {out_shape}: "
                         "expected (batch, classes)")
    classes = int(out_shape[1])
    if num_classes is not None and int(num_classes) != classes:
        raise ValueError(f"[pcmsim.torch_convert] num_classes = {num_classes} but the module "
                         f"outputs {classes}")
    net_shape = (list(input_shape) if len(input_shape) == 3 else
                 [input_shape[0], 1, input_shape[1]] if len(input_shape) == 2 else
                 [1, 1, input_shape[0]])
    channels = net_shape[0]
    mean = [0.0] * channels if input_mean is None else [float(v) for v in np.atleast_1d(input_mean)]
    std = [1.0] * channels if input_std is None else [float(v) for v in np.atleast_1d(input_std)]
    net = _pcmsim.Network(name=name or type(module).__name__, input_shape=net_shape,
                          num_classes=classes, input_mean=mean, input_std=std,
                          class_names=list(class_names or []), layers=conv.layers)
    net.validate()
    return net
