"""pcmsim.torch: hardware-aware training through the simulator's own forward (nets/training.h).

- with every noise off, the training forward of a converted model equals pcmsim's evaluation
  forward (AnalogChip.logits of the exported network) bit for bit, converters and calibrated
  ranges included;
- its gradients equal torch autograd on the ideal weights, and finite differences;
- the straight-through backward zeroes the gradient of inputs the DAC clipped;
- bad modules and untrainable configs are clear errors;
- the same seed gives the same bits (any thread count), another seed other bits.
"""
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

import pcmsim  # noqa: E402
import pcmsim.torch as pt  # noqa: E402


class SmallNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 6, 3, stride=2)
        self.fc1 = nn.Linear(6 * 6 * 6, 20)
        self.fc2 = nn.Linear(20, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)  # 4 x 7 x 7
        x = F.relu(self.conv2(x))                    # 6 x 3 x 3
        x = F.pad(x, (0, 3, 0, 3))                   # 6 x 6 x 6: a Linear of 216 inputs
        x = torch.flatten(x, 1)
        return self.fc2(F.relu(self.fc1(x)))


def small_net(seed=0):
    torch.manual_seed(seed)
    return SmallNet()


def quiet_config(**io):
    """Ideal devices (no programming noise, no drift, no read noise), no output noise."""
    cfg = pcmsim.SimulationConfig(seed=7)
    cfg.device.model = "ideal"
    cfg.io.out_noise = 0.0
    for k, v in io.items():
        setattr(cfg.io, k, v)
    return cfg


def images(n=12, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 1, 14, 14, generator=g)


AT_ZERO = dict(t_train_min=0.0, t_train_max=0.0)


@pytest.mark.parametrize("p_bits,calibrate", [(0, False), (8, False), (4, True)])
def test_noise_off_training_forward_equals_evaluation(p_bits, calibrate):
    model = small_net()
    cfg = quiet_config(p_in=p_bits, p_out=p_bits)
    cfg.calibrate = calibrate
    x = images()
    params = pcmsim.TrainingParams(calibration_rows=10 ** 9, **AT_ZERO)
    pt.convert(model, cfg, params, seed=3)
    model.train()
    y_train = model(x).detach().numpy()
    net = pt.export(model, (1, 14, 14))
    chip = pcmsim.AnalogChip(net, cfg)
    xs = np.ascontiguousarray(x.numpy())
    if calibrate:
        chip.calibrate(xs)  # the same images: the ranges the training step calibrated
    chip.set_time(0.0)
    y_eval = chip.logits(xs)
    assert y_train.dtype == y_eval.dtype == np.float32
    assert np.array_equal(y_train, y_eval), np.abs(y_train - y_eval).max()
    if p_bits:  # the converters really quantise: FP32 differs
        assert not np.array_equal(y_train, model.eval()(x).detach().numpy())


def test_gradients_equal_torch_on_ideal_weights():
    ref = small_net()
    model = small_net()
    pt.convert(model, quiet_config(p_in=0, p_out=0), pcmsim.TrainingParams(**AT_ZERO))
    x = images(8)
    target = torch.arange(8) % 10
    for m in (ref, model):
        m.train()
        F.cross_entropy(m(x), target).backward()
    for (name, p_ref), (_, p) in zip(ref.named_parameters(), model.named_parameters()):
        assert p.grad is not None, name
        scale = p_ref.grad.abs().max().item()
        assert scale > 0
        np.testing.assert_allclose(p.grad.numpy(), p_ref.grad.numpy(), rtol=0,
                                   atol=2e-4 * scale, err_msg=name)


def test_gradients_equal_finite_differences():
    torch.manual_seed(4)
    holder = nn.Sequential(nn.Linear(30, 7))
    pt.convert(holder, quiet_config(p_in=0, p_out=0), pcmsim.TrainingParams(**AT_ZERO))
    holder.train()
    x = torch.randn(5, 30, requires_grad=True)
    r = torch.randn(5, 7)
    (holder(x) * r).sum().backward()
    layer = holder[0]

    def loss():
        with torch.enable_grad():
            return float((holder(x.detach()) * r).sum())

    eps = 0.25  # the loss is linear in W and x: differences are exact up to float rounding
    for (i, j) in [(0, 0), (3, 17), (6, 29)]:
        w0 = layer.weight.data[i, j].item()
        layer.weight.data[i, j] = w0 + eps
        up = loss()
        layer.weight.data[i, j] = w0 - eps
        down = loss()
        layer.weight.data[i, j] = w0
        fd = (up - down) / (2 * eps)
        assert abs(fd - layer.weight.grad[i, j].item()) < 1e-3 * (1 + abs(fd)), (i, j)
    expected_gx = r @ layer.weight.detach()
    np.testing.assert_allclose(x.grad.numpy(), expected_gx.numpy(), rtol=1e-5, atol=1e-5)


def test_backward_zeroes_clipped_inputs():
    w = np.random.default_rng(0).standard_normal((3, 5)).astype(np.float32)
    x = np.array([[0.5, -2.0, 1.0, 3.0, -0.9]], dtype=np.float32)
    gy = np.ones((1, 3), dtype=np.float32)
    gx, gw, _ = pcmsim.analog_train_backward(w, x, gy, 1.0)
    assert np.allclose(gx[0, [0, 2, 4]], gy @ w[:, [0, 2, 4]])
    assert np.all(gx[0, [1, 3]] == 0)
    np.testing.assert_allclose(gw, gy.T @ np.clip(x, -1, 1), rtol=1e-6)
    gx0, _, _ = pcmsim.analog_train_backward(w, x, gy, 0.0)  # no clipping
    np.testing.assert_allclose(gx0, gy @ w, rtol=1e-6)


def test_static_range_training_reports_the_clip_and_uses_it():
    cfg = quiet_config(p_in=8, p_out=8, noise_management="static_range")
    cfg.calibrate = True
    cfg.calibration.statistic = "percentile"
    cfg.calibration.percentile = 50.0  # half the inputs beyond the range: clipped
    params = pcmsim.TrainingParams(**AT_ZERO)
    w = np.random.default_rng(1).standard_normal((4, 6)).astype(np.float32)
    x = np.random.default_rng(2).standard_normal((64, 6)).astype(np.float32)
    y, t, clip, _, _ = pcmsim.analog_train_forward(w, x, "fc", 6, 4, config=cfg, params=params,
                                             key=pcmsim.training_key(0, 0, 0))
    assert t == 0.0 and y.shape == (64, 4)
    median = np.median(np.abs(x))
    assert 0.5 * median < clip < 2 * median


def test_noise_on_changes_every_step_and_time_is_drawn_per_step():
    model = small_net()
    cfg = pcmsim.SimulationConfig(io=pcmsim.IoParams(p_in=4, p_out=4), calibrate=True)
    pt.convert(model, cfg, pcmsim.TrainingParams(), seed=2)
    model.train()
    x = images(4)
    y1, t1 = model(x).detach().numpy(), model.pcmsim_context.last_t_inference
    y2, t2 = model(x).detach().numpy(), model.pcmsim_context.last_t_inference
    assert model.pcmsim_context.step == 2
    assert not np.array_equal(y1, y2)
    assert t1 != t2 and 3600 <= min(t1, t2) and max(t1, t2) <= 31536000
    p = pcmsim.TrainingParams()
    # One time per step, whatever the layer.
    assert pcmsim.training_time(p, pcmsim.training_key(2, 0, 5)) == \
        pcmsim.training_time(p, pcmsim.training_key(2, 3, 5))
    times = [pcmsim.training_time(p, pcmsim.training_key(2, 0, s)) for s in range(400)]
    logs = np.log10(times)
    assert np.log10(3600) <= logs.min() and logs.max() <= np.log10(31536000)
    assert abs(np.mean(logs) - 0.5 * (np.log10(3600) + np.log10(31536000))) < 0.2  # log-uniform


def train_two_steps(seed, model_seed=0):
    model = small_net(model_seed)
    cfg = pcmsim.SimulationConfig(io=pcmsim.IoParams(p_in=4, p_out=4), calibrate=True)
    pt.convert(model, cfg, pcmsim.TrainingParams(), seed=seed)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    x = images(8)
    target = torch.arange(8) % 10
    loader = [(x, target), (x, target)]
    losses = pt.fit(model, loader, epochs=1, optimizer=opt, progress=False)
    return losses, [p.detach().numpy().copy() for p in model.parameters()]


def test_same_seed_same_bits_other_seed_other_bits():
    l1, w1 = train_two_steps(11)
    l2, w2 = train_two_steps(11)
    l3, w3 = train_two_steps(12)
    assert l1 == l2 and all(np.array_equal(a, b) for a, b in zip(w1, w2))
    assert l1 != l3 and not all(np.array_equal(a, b) for a, b in zip(w1, w3))


def test_training_forward_same_bits_for_any_thread_count(tmp_path):
    """300 rows: three of the tile's fixed 132-row blocks, run with 1 and 2 OpenMP threads."""
    script = (
        "import numpy as np, pcmsim\n"
        "cfg = pcmsim.SimulationConfig(io=pcmsim.IoParams(p_in=4, p_out=4), calibrate=True)\n"
        "w = np.random.default_rng(0).standard_normal((40, 300)).astype(np.float32)\n"
        "x = np.random.default_rng(1).standard_normal((300, 300)).astype(np.float32)\n"
        "y, t, c, _, _ = pcmsim.analog_train_forward(w, x, 'fc', 300, 40, config=cfg,\n"
        "    params=pcmsim.TrainingParams(), key=pcmsim.training_key(3, 1, 9))\n"
        "import sys; sys.stdout.write(y.tobytes().hex()[:2000] + str(float(y.sum())))\n")
    outs = []
    for threads in ("1", "2"):
        env = dict(os.environ, OMP_NUM_THREADS=threads)
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                              env=env)
        assert proc.returncode == 0, proc.stderr
        outs.append(proc.stdout)
    assert outs[0] == outs[1] and len(outs[0]) > 100


@pytest.mark.parametrize("kernel,stride,padding,dilation", [
    ((3, 3), (1, 1), (1, 1), (1, 1)), ((5, 3), (2, 1), (0, 2), (1, 2)), ((1, 1), (3, 3), (0, 0), (1, 1))])
def test_im2col_equals_torch_unfold_and_col2im_its_adjoint(kernel, stride, padding, dilation):
    x = torch.randn(3, 4, 11, 9, generator=torch.Generator().manual_seed(5))
    geometry = (4, 11, 9, kernel, stride, padding, dilation)
    cols = pcmsim.training_im2col(x.numpy(), *geometry)
    ref = F.unfold(x, kernel, dilation=dilation, padding=padding, stride=stride)
    # torch: (B, C*kh*kw, L); pcmsim: (B*L, C*kh*kw), the same numbers (copies, so exact).
    assert np.array_equal(cols, ref.transpose(1, 2).reshape(-1, ref.shape[1]).numpy())
    g = torch.randn(cols.shape, generator=torch.Generator().manual_seed(6))
    back = pcmsim.training_col2im(g.numpy(), 3, *geometry)
    ref_back = F.fold(g.reshape(3, -1, g.shape[1]).transpose(1, 2), (11, 9), kernel,
                      dilation=dilation, padding=padding, stride=stride)
    # Sums of at most kh*kw*... terms in another order: float rounding only.
    np.testing.assert_allclose(back, ref_back.numpy(), rtol=1e-6, atol=1e-5)
    # The same from channels-last (NHWC) images, the layout analog convolutions output.
    nhwc = np.ascontiguousarray(x.permute(0, 2, 3, 1).numpy())
    assert np.array_equal(pcmsim.training_im2col(nhwc, *geometry, channels_last=True), cols)
    back_last = pcmsim.training_col2im(g.numpy(), 3, *geometry, channels_last=True)
    assert back_last.shape == (3, 11, 9, 4)
    np.testing.assert_allclose(back_last.transpose(0, 3, 1, 2), ref_back.numpy(), rtol=1e-6,
                               atol=1e-5)
    with pytest.raises(ValueError, match="kernel_h = 0"):
        pcmsim.training_im2col(x.numpy(), 4, 11, 9, (0, 3))
    with pytest.raises(ValueError, match="no output position"):
        pcmsim.training_im2col(x.numpy(), 4, 11, 9, (13, 3))
    with pytest.raises(ValueError, match="images"):
        pcmsim.training_im2col(x.numpy(), 5, 11, 9, kernel)


def test_unsupported_layers_are_named():
    class WithLstm(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = nn.LSTM(8, 16)
            self.head = nn.Linear(16, 4)
            self.grouped = nn.Conv2d(4, 4, 3, groups=2)

    with pytest.raises(ValueError) as err:
        pt.convert(WithLstm(), quiet_config())
    msg = str(err.value)
    assert "rnn (LSTM)" in msg and "grouped" in msg and "groups=2" in msg
    assert "head" not in msg


@pytest.mark.parametrize("change,needle", [
    (lambda c, p: (setattr(c.io, "p_out", 0), setattr(c, "calibrate", True)), "io.p_out = 0"),
    (lambda c, p: setattr(c.io, "noise_management", "static_range"), "static_range"),
    (lambda c, p: (setattr(p, "t_train_min", 10.0), setattr(p, "t_train_max", 1.0)),
     "t_train_max = 1"),
    (lambda c, p: setattr(p, "t_train_min", 0.0), "t_train_min = 0"),
    (lambda c, p: setattr(p, "calibration_rows", 0), "calibration_rows = 0"),
    (lambda c, p: (setattr(c.io, "noise_management", "static_range"), setattr(c.io, "p_in", 0),
                   setattr(p, "learn_input_ranges", True)), "io.p_in = 0 with learn_input_ranges"),
    (lambda c, p: setattr(p, "learn_input_ranges", True),
     "learn_input_ranges with io.noise_management = abs_max"),
])
def test_untrainable_configs_are_value_errors(change, needle):
    cfg, params = pcmsim.SimulationConfig(), pcmsim.TrainingParams()
    change(cfg, params)
    with pytest.raises(ValueError, match=needle.replace(".", r"\.")):
        pt.convert(small_net(), cfg, params)


def learned_config(p_bits=4):
    cfg = quiet_config(p_in=p_bits, p_out=p_bits, noise_management="static_range")
    cfg.calibrate = True  # the ADC ranges; the input ranges are learned
    return cfg


def test_learned_input_ranges_start_at_the_statistic_and_get_a_gradient():
    model = small_net()
    params = pcmsim.TrainingParams(learn_input_ranges=True, calibration_rows=10 ** 9, **AT_ZERO)
    pt.convert(model, learned_config(), params)
    layers = pt.analog_layers(model)
    assert all(float(m.input_range) == 0.0 for m in layers)  # not started
    x = images(8)
    model.train()
    F.cross_entropy(model(x), torch.arange(8) % 10).backward()
    # The first layer's range starts at max|x| (calibration statistic max, headroom 1).
    assert float(layers[0].input_range) == pytest.approx(float(x.abs().max()), rel=1e-6)
    for m in layers:
        assert float(m.input_range) > 0, m._pcmsim_name
        assert m.input_range.grad is not None and np.isfinite(float(m.input_range.grad))
    # At the max nothing clips, so the gradient is LSQ's quantisation term only: not zero.
    assert any(float(m.input_range.grad) != 0.0 for m in layers)


def test_learned_range_needs_a_signal_and_a_non_negative_start():
    w = np.ones((2, 3), dtype=np.float32)
    params = pcmsim.TrainingParams(learn_input_ranges=True, **AT_ZERO)
    key = pcmsim.training_key(1, 0, 0)
    with pytest.raises(ValueError, match="calibration inputs are all zero"):
        pcmsim.analog_train_forward(w, np.zeros((4, 3), np.float32), "fc", 3, 2,
                                    config=learned_config(), params=params, key=key)
    with pytest.raises(ValueError, match="learned_input_range = -0.5"):
        pcmsim.analog_train_forward(w, np.ones((4, 3), np.float32), "fc", 3, 2,
                                    config=learned_config(), params=params, key=key,
                                    learned_input_range=-0.5)


def test_learned_input_range_gradient_is_lsq():
    rng = np.random.default_rng(3)
    w = rng.standard_normal((3, 6)).astype(np.float32)
    x = (2.0 * rng.standard_normal((5, 6))).astype(np.float32)
    gy = rng.standard_normal((5, 3)).astype(np.float32)
    r, bound, bits = 1.5, 1.0, 4
    gx, gw, g_range = pcmsim.analog_train_backward(w, x, gy, r * bound, r, bits)
    levels = 2 ** (bits - 1) - 1
    u = x.astype(np.float64) / r
    q = np.where(np.abs(u) * levels - np.floor(np.abs(u) * levels) >= 0.5,
                 np.floor(np.abs(u) * levels) + 1, np.floor(np.abs(u) * levels)) * np.sign(u) / levels
    d = np.where(np.abs(u) > bound, np.sign(u) * bound, q - u)
    full = gy.astype(np.float64) @ w.astype(np.float64)
    expected = (full * d).sum() / np.sqrt(6 * levels)
    assert g_range == pytest.approx(expected, rel=1e-5)
    assert np.all(gx[np.abs(x) > r * bound] == 0)  # clipped inputs pass no gradient to x
    _, _, none = pcmsim.analog_train_backward(w, x, gy, r * bound)
    assert none == 0.0


def test_learned_ranges_travel_with_the_model_and_evaluation_uses_them(tmp_path):
    model = small_net()
    params = pcmsim.TrainingParams(learn_input_ranges=True, calibration_rows=10 ** 9, **AT_ZERO)
    cfg = learned_config()
    pt.convert(model, cfg, params, seed=3)
    x = images()
    model.train()
    model(x)  # starts the ranges
    with torch.no_grad():  # move them off the statistic, as training would
        for i, m in enumerate(pt.analog_layers(model)):
            m.input_range.mul_(0.6 + 0.1 * i)
    y_train = model(x).detach().numpy()
    net = pt.export(model, (1, 14, 14))
    ranges = {l.name: l.learned_input_range for l in net.layers if l.learned_input_range > 0}
    assert ranges == {m._pcmsim_name: pytest.approx(float(m.input_range))
                      for m in pt.analog_layers(model)}
    path = str(tmp_path / "learned.h5")
    pcmsim.save_network(net, path)
    loaded = pcmsim.load_network(path)
    assert {l.name: l.learned_input_range for l in loaded.layers
            if l.learned_input_range > 0} == ranges
    xs = np.ascontiguousarray(x.numpy())
    chip = pcmsim.AnalogChip(loaded, cfg)
    chip.calibrate(xs)  # the ADC ranges, measured with the learned input ranges in place
    chip.set_time(0.0)
    y_eval = chip.logits(xs)
    assert np.array_equal(y_train, y_eval), np.abs(y_train - y_eval).max()
    # Ignoring them (use_learned_input_ranges off) calibrates the input ranges instead.
    off = cfg.copy()
    off.use_learned_input_ranges = False
    chip_off = pcmsim.AnalogChip(loaded, off)
    chip_off.calibrate(xs)
    chip_off.set_time(0.0)
    assert not np.array_equal(chip_off.logits(xs), y_eval)
    # A negative range in a file is refused, naming the field.
    bad = loaded.layers
    bad[0].learned_input_range = -1.0
    loaded.layers = bad
    with pytest.raises(ValueError, match="learned_input_range = -1"):
        loaded.validate()


def test_cli_says_when_learned_ranges_are_unused(tmp_path):
    from conftest import FASHION_MNIST, PCMSIM_BIN
    if not PCMSIM_BIN.exists() or not FASHION_MNIST.exists():
        pytest.skip("needs the built pcmsim command and Fashion-MNIST")
    torch.manual_seed(0)
    holder = nn.Sequential(nn.Flatten(), nn.Linear(784, 10))
    params = pcmsim.TrainingParams(learn_input_ranges=True, **AT_ZERO)
    pt.convert(holder, learned_config(8), params)
    holder.train()
    holder(torch.randn(4, 1, 28, 28))  # starts the range
    path = tmp_path / "learned.h5"
    pcmsim.save_network(pt.export(holder, (1, 28, 28)), str(path))
    args = [str(PCMSIM_BIN), "run", "--model", str(path), "--limit", "20", "--trials", "1",
            "--t-inference", "1"]
    note = "used only with --noise-management static_range (now abs_max)"
    proc = subprocess.run(args + ["--out", str(tmp_path / "a.h5")], capture_output=True, text=True)
    assert proc.returncode == 0 and note in proc.stderr, proc.stderr
    proc = subprocess.run(args + ["--out", str(tmp_path / "b.h5"), "--noise-management",
                                  "static_range"], capture_output=True, text=True)
    assert proc.returncode == 0 and "learned input ranges" not in proc.stderr, proc.stderr


def test_convert_keeps_names_digital_layers_and_exports():
    model = small_net()
    cfg = quiet_config()
    cfg.mapper.digital_layers = ["first"]
    pt.convert(model, cfg)
    assert type(model.conv1) is nn.Conv2d  # kept digital
    assert [type(m).__name__ for m in pt.analog_layers(model)] == \
        ["AnalogConv2d", "AnalogLinear", "AnalogLinear"]
    assert set(dict(model.named_parameters())) == set(dict(small_net().named_parameters()))
    net = pt.export(model, (1, 14, 14))
    x = np.ascontiguousarray(images(3).numpy())
    np.testing.assert_allclose(pcmsim.fp32_logits(net, x),
                               model.eval()(torch.from_numpy(x)).detach().numpy(),
                               rtol=1e-5, atol=1e-5)
