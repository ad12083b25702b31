"""Hardware-aware training with pcmsim's own forward (PyTorch optional: imported only here).

    import pcmsim, pcmsim.torch as pt
    config = pcmsim.SimulationConfig(io=pcmsim.IoParams(p_in=4, p_out=4), calibrate=True)
    model = pt.convert(model, config, pcmsim.TrainingParams(t_train_min=3600,
                                                            t_train_max=31536000))
    pt.fit(model, train_loader, epochs=2)
    pcmsim.save_network(pt.export(model, input_shape=(1, 28, 28)), "robust.h5")

``convert`` replaces every ``nn.Linear`` and ``nn.Conv2d`` (groups 1, zero padding) by an analog
layer (a subclass, so the module keeps its attribute names, state dict and ``from_torch``
export) bound to the SimulationConfig that evaluation uses; the rest stays digital (PyTorch).
In training mode the analog layers run each step through the C++ pipeline of
nets/training.h, which is evaluation's (``ProgrammedChip`` -> ``at(t)`` -> ``ConverterSetup``
-> ``ChipForward``) on the layer's current weights: programming noise, drift to a time drawn per
step from TrainingParams (log-uniform, seconds), read noise, output noise, DAC/ADC quantisation
and clipping, the mapper's tile split, calibrated ranges, the digital unit and GDC, each as the
config says. The backward is C++ too (straight-through: gradients for the clean weights and the
inputs, zero for inputs the DAC clipped). Conv2d: ``torch.nn.functional.unfold`` (im2col, a
copy), then the same matrix path. In eval mode the layers compute in FP32 (PyTorch): evaluate on
the simulated chip with ``pcmsim.evaluate`` / ``AnalogChip`` after ``export``.

Random numbers: every draw is keyed by (seed, analog layer number, step) through pcmsim's RNG
keys; the step counts the model's training-mode forward calls (``model.pcmsim_step``). The same
seed and data order give the same bits for any thread count.
"""
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from . import _pcmsim

__all__ = ["convert", "export", "fit", "AnalogLinear", "AnalogConv2d", "analog_layers",
           "AnalogContext"]

_WHERE = "[pcmsim.torch]"
# Leaf modules holding weights that stay digital (as in the exported network).
_DIGITAL_OK = (nn.BatchNorm1d, nn.BatchNorm2d, nn.LayerNorm, nn.Embedding)


class AnalogContext:
    """What the analog layers of one converted model share: the config, the training settings,
    the seed and the step counter."""

    def __init__(self, config, params, seed):
        self.config = config
        self.params = params
        self.seed = int(seed)
        self.step = 0
        self.last_t_inference = None


class _Im2col(torch.autograd.Function):
    """NCHW images -> (B*H'*W', C*kh*kw) columns in pcmsim's layout, and back for the gradient,
    in C++ (torch's unfold would need a transposed copy, and its fold is slow on the CPU)."""

    @staticmethod
    def forward(ctx, x, geometry):
        x = x.detach().float()
        # The outputs of analog convolutions are channels_last (no copy): read them as NHWC.
        last = x.shape[1] > 1 and x.is_contiguous(memory_format=torch.channels_last)
        images = x.permute(0, 2, 3, 1) if last else x.contiguous()
        ctx.geometry = geometry + (last,)
        ctx.batch = x.shape[0]
        return torch.from_numpy(_pcmsim.training_im2col(images.numpy(), *ctx.geometry))

    @staticmethod
    def backward(ctx, grad_cols):
        g = torch.from_numpy(_pcmsim.training_col2im(grad_cols.contiguous().numpy(), ctx.batch,
                                                      *ctx.geometry))
        return (g.permute(0, 3, 1, 2) if ctx.geometry[-1] else g), None


class _AnalogMatmul(torch.autograd.Function):
    """y = x . W^T through pcmsim's training forward; straight-through backward in C++."""

    @staticmethod
    def forward(ctx, x, weight, input_range, layer):
        w = weight.detach().reshape(weight.shape[0], -1)
        if not w.is_contiguous():
            w = w.contiguous()
        x = x.detach().contiguous()
        c = layer._pcmsim_ctx
        key = _pcmsim.training_key(c.seed, layer._pcmsim_index, c.step)
        learned = float(input_range) if input_range is not None else 0.0
        y, t, clip, used_range, dac_bits = _pcmsim.analog_train_forward(
            w.numpy(), x.numpy(), layer._pcmsim_name, layer._pcmsim_in, layer._pcmsim_out,
            layer._pcmsim_kh, layer._pcmsim_kw, c.config, c.params, key, learned)
        if input_range is not None and learned == 0.0:  # the first step started the range
            with torch.no_grad():
                input_range.fill_(used_range)
        c.last_t_inference = t
        ctx.save_for_backward(x, w)
        ctx.clip = clip
        ctx.learned = (used_range, dac_bits) if input_range is not None else (0.0, 0)
        ctx.weight_shape = weight.shape
        return torch.from_numpy(y)

    @staticmethod
    def backward(ctx, grad_y):
        x, w = ctx.saved_tensors
        gx, gw, g_range = _pcmsim.analog_train_backward(
            w.numpy(), x.numpy(), grad_y.contiguous().numpy(), ctx.clip, *ctx.learned)
        g_range = torch.tensor(g_range, dtype=torch.float32) if ctx.learned[0] > 0 else None
        return (torch.from_numpy(gx), torch.from_numpy(gw).view(ctx.weight_shape), g_range,
                None)


class _AnalogMixin:
    def _bind(self, ctx, index, name, in_features, out_features, kh, kw):
        self._pcmsim_ctx = ctx
        self._pcmsim_index = index
        self._pcmsim_name = name
        self._pcmsim_in, self._pcmsim_out = int(in_features), int(out_features)
        self._pcmsim_kh, self._pcmsim_kw = int(kh), int(kw)

    def _pcmsim_range(self):
        """The learned input range (TrainingParams.learn_input_ranges), else None."""
        return getattr(self, "input_range", None)

    def _analog(self):
        return self.training and torch.is_grad_enabled() or getattr(self, "analog_eval", False)


class AnalogLinear(_AnalogMixin, nn.Linear):
    """nn.Linear on simulated PCM tiles in training mode (FP32 in eval mode)."""

    def forward(self, x):
        if not self._analog():
            return F.linear(x, self.weight, self.bias)
        lead = x.shape[:-1]
        y = _AnalogMatmul.apply(x.reshape(-1, x.shape[-1]).float(), self.weight,
                                self._pcmsim_range(), self)
        if self.bias is not None:
            y = y + self.bias
        return y.reshape(*lead, self.out_features)


class AnalogConv2d(_AnalogMixin, nn.Conv2d):
    """nn.Conv2d on simulated PCM tiles in training mode: im2col (torch's unfold) then the
    matrix path of AnalogLinear (FP32 in eval mode)."""

    def forward(self, x):
        if not self._analog():
            return self._conv_forward(x, self.weight, self.bias)
        b, c, h, w = x.shape
        kh, kw = self.kernel_size
        ho = (h + 2 * self.padding[0] - self.dilation[0] * (kh - 1) - 1) // self.stride[0] + 1
        wo = (w + 2 * self.padding[1] - self.dilation[1] * (kw - 1) - 1) // self.stride[1] + 1
        geometry = (c, h, w, tuple(self.kernel_size), tuple(self.stride), tuple(self.padding),
                    tuple(self.dilation))
        rows = _Im2col.apply(x, geometry)  # (B*L, C*kh*kw), channel-major like pcmsim
        y = _AnalogMatmul.apply(rows, self.weight, self._pcmsim_range(), self)  # (B*L, out)
        # (B, H', W', out) viewed as (B, out, H', W'): PyTorch's channels-last layout, no copy.
        y = y.view(b, ho, wo, self.out_channels).permute(0, 3, 1, 2)
        if self.bias is not None:
            y = y + self.bias.view(1, -1, 1, 1)
        return y


def analog_layers(module):
    """The analog layers of a converted module, in module order."""
    return [m for m in module.modules() if isinstance(m, _AnalogMixin)]


def _unsupported(module):
    bad = []
    for name, m in module.named_modules():
        if isinstance(m, nn.Conv2d):
            if m.groups != 1 or m.padding_mode != "zeros" or isinstance(m.padding, str):
                bad.append(f"{name or '<root>'} ({type(m).__name__} with groups={m.groups}, "
                           f"padding={m.padding!r}, padding_mode={m.padding_mode!r}; "
                           "supported: groups=1, numeric zero padding)")
            continue
        if isinstance(m, (nn.Linear,) + _DIGITAL_OK):
            continue
        if isinstance(m, (nn.RNNBase, nn.MultiheadAttention, nn.Bilinear, nn.Conv1d, nn.Conv3d,
                          nn.modules.conv._ConvTransposeNd)):
            bad.append(f"{name or '<root>'} ({type(m).__name__})")
            continue
        if next(m.children(), None) is None and any(True for _ in m.parameters(recurse=False)):
            bad.append(f"{name or '<root>'} ({type(m).__name__} holds weights)")
    return bad


def _resolve_digital(names, matrix_names):
    out = set()
    for n in names:
        if n == "first" and matrix_names:
            out.add(matrix_names[0])
        elif n == "last" and matrix_names:
            out.add(matrix_names[-1])
        else:
            out.add(n)
    return out


def convert(module, config=None, params=None, seed=0):
    """Replaces (in place) every nn.Linear and nn.Conv2d of ``module`` by AnalogLinear /
    AnalogConv2d bound to ``config`` (a pcmsim.SimulationConfig; default: its defaults) and
    ``params`` (pcmsim.TrainingParams), keeping weights, biases, names and the rest of the module
    (digital). Layers named in config.mapper.digital_layers ("first"/"last" included) stay
    digital. Returns the module.

    Raises ValueError naming every unsupported layer (recurrent, attention with its own
    projections, grouped or non-zero-padded convolutions, 1-D/3-D convolutions, unknown modules
    holding weights) and, naming the parameter and value, when the config cannot be trained
    (TrainingParams.check_trainable).
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"{_WHERE} convert: module is a {type(module).__name__}, expected a "
                        "torch.nn.Module")
    config = _pcmsim.SimulationConfig() if config is None else config.copy()
    params = _pcmsim.TrainingParams() if params is None else params.copy()
    params.check_trainable(config)
    bad = _unsupported(module)
    if bad:
        raise ValueError(f"{_WHERE} convert: unsupported layers (not trainable on pcmsim tiles): "
                         + "; ".join(bad))
    matrix = [(n, m) for n, m in module.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))]
    digital = _resolve_digital(list(config.mapper.digital_layers), [n for n, _ in matrix])
    if isinstance(module, (nn.Linear, nn.Conv2d)):
        raise ValueError(f"{_WHERE} convert: pass a container module (the layer itself cannot "
                         "be replaced in place)")
    ctx = AnalogContext(config, params, seed)
    index = 0
    for name, m in matrix:
        if name in digital or isinstance(m, _AnalogMixin):
            continue
        parent_name, _, attr = name.rpartition(".")
        parent = module.get_submodule(parent_name) if parent_name else module
        if isinstance(m, nn.Conv2d):
            m.__class__ = type("Analog" + type(m).__name__, (AnalogConv2d, type(m)), {}) \
                if type(m) is not nn.Conv2d else AnalogConv2d
            m._bind(ctx, index, name, m.in_channels, m.out_channels, *m.kernel_size)
        else:
            m.__class__ = type("Analog" + type(m).__name__, (AnalogLinear, type(m)), {}) \
                if type(m) is not nn.Linear else AnalogLinear
            m._bind(ctx, index, name, m.in_features, m.out_features, 0, 0)
        if params.learn_input_ranges and not hasattr(m, "input_range"):
            # 0 until the first training step starts it at its batch's calibration statistic.
            m.register_parameter("input_range", nn.Parameter(torch.zeros(())))
        setattr(parent, attr, m)
        index += 1
    module.pcmsim_context = ctx

    def count_step(mod, inputs):
        if mod.training and torch.is_grad_enabled():
            ctx.step += 1
    if not hasattr(module, "_pcmsim_hook"):
        module._pcmsim_hook = module.register_forward_pre_hook(count_step)
    return module


def export(module, input_shape, **kwargs):
    """The pcmsim Network of a (converted) module: pcmsim.from_torch on its current weights
    (eval mode); keyword arguments as from_torch (input_mean, input_std, name, ...). Save it with
    pcmsim.save_network."""
    from .torch_convert import from_torch
    was_training = module.training
    try:
        net = from_torch(module, input_shape, **kwargs)
    finally:
        module.train(was_training)
    learned = {m._pcmsim_name: float(m.input_range) for m in analog_layers(module)
               if m._pcmsim_range() is not None and float(m.input_range) > 0}
    if learned:  # the learned input ranges travel with the model
        layers = net.layers
        for layer in layers:
            if layer.name in learned:
                layer.learned_input_range = learned.pop(layer.name)
        if learned:
            raise ValueError(f"{_WHERE} export: no layer of the exported network is named "
                             f"{sorted(learned)} (learned input ranges)")
        net.layers = layers
        net.validate()
    return net


def fit(model, train_loader, epochs=1, optimizer=None, loss_fn=None, scheduler=None,
        progress=True, after_step=None):
    """Trains ``model`` (converted or not) for ``epochs`` passes over ``train_loader`` (an
    iterable of (inputs, targets) batches); returns the mean loss of each epoch.

    optimizer: default SGD(lr=0.01, momentum=0.9). loss_fn: default cross-entropy. scheduler:
    stepped after every optimiser step. after_step(model): called after every step (e.g. weight
    clipping). progress: a tqdm bar per epoch when tqdm is installed (Debian python3-tqdm).
    Users may ignore fit and write their own loop: the analog layers need nothing from it.
    """
    if int(epochs) < 1:
        raise ValueError(f"{_WHERE} fit: epochs = {epochs}: must be >= 1")
    optimizer = optimizer or torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    loss_fn = loss_fn or F.cross_entropy
    bar = None
    if progress:
        try:
            from tqdm import tqdm as bar
        except ImportError:
            bar = None
    history = []
    for epoch in range(int(epochs)):
        model.train()
        batches = train_loader
        if bar is not None:
            total = len(train_loader) if hasattr(train_loader, "__len__") else None
            batches = bar(train_loader, total=total, desc=f"epoch {epoch + 1}/{epochs}",
                          leave=False)
        loss_sum, n = 0.0, 0
        for xb, yb in batches:
            out = model(xb)
            loss = loss_fn(out, yb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            if after_step is not None:
                after_step(model)
            loss_sum += float(loss) * len(xb)
            n += len(xb)
        history.append(loss_sum / max(n, 1))
    model.eval()
    return history
