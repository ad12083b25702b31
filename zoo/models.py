"""The zoo's networks (PyTorch) and the hardware-aware training hooks.

Every Conv2d/Linear here is an *analog* layer: it will be mapped onto crossbar tiles, so
hardware-aware training perturbs its weights. BatchNorm, pooling, activations and residual adds
stay digital and are never perturbed.

Hardware-aware training (Joshi et al., Nat. Commun. 11, 2473, 2020): at every training forward
pass each analog layer uses W + N(0, (eta * max|W|)^2) (fresh draw per pass, max over the layer,
gradient taken at the noisy point and applied to the clean weights); after every optimiser step
the weights are clipped to +-clip_sigma * std(W) of the layer, so that the conductance range is
spent on the bulk of the weights rather than on rare outliers.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F


class NoisyMixin:
    """Weight-noise injection shared by the analog layers; eta = 0 disables it."""
    eta = 0.0

    def effective_weight(self):
        w = self.weight
        if self.training and self.eta > 0.0:
            sigma = self.eta * w.detach().abs().max()
            w = w + torch.randn_like(w) * sigma
        return w


class AConv2d(NoisyMixin, nn.Conv2d):
    def forward(self, x):
        return self._conv_forward(x, self.effective_weight(), self.bias)


class ALinear(NoisyMixin, nn.Linear):
    def forward(self, x):
        return F.linear(x, self.effective_weight(), self.bias)


def analog_layers(model):
    return [m for m in model.modules() if isinstance(m, (AConv2d, ALinear))]


def set_weight_noise(model, eta):
    for m in analog_layers(model):
        m.eta = float(eta)


@torch.no_grad()
def clip_weights(model, clip_sigma):
    if clip_sigma <= 0:
        return
    for m in analog_layers(model):
        c = clip_sigma * m.weight.std()
        m.weight.clamp_(-c, c)


class MLP(nn.Module):
    """784-256-128-10, ReLU."""

    def __init__(self):
        super().__init__()
        self.fc1 = ALinear(784, 256)
        self.fc2 = ALinear(256, 128)
        self.fc3 = ALinear(128, 10)

    def forward(self, x):
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class LeNet5(nn.Module):
    """Classic LeNet-5 on 28x28 (input zero-padded by 2 inside conv1 -> the 32x32 geometry):
    conv5x5 6, maxpool 2, conv5x5 16, maxpool 2, fc 120, fc 84, fc 10; ReLU."""

    def __init__(self):
        super().__init__()
        self.conv1 = AConv2d(1, 6, 5, padding=2)
        self.conv2 = AConv2d(6, 16, 5)
        self.fc1 = ALinear(16 * 5 * 5, 120)
        self.fc2 = ALinear(120, 84)
        self.fc3 = ALinear(84, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)   # 6x14x14
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)   # 16x5x5
        x = torch.flatten(x, 1)                      # (C,H,W) order
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


class BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN + shortcut, ReLU. The shortcut is identity, or a 1x1 conv
    (stride s, no bias) + BN when the shape changes."""

    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = AConv2d(cin, cout, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = AConv2d(cout, cout, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(AConv2d(cin, cout, 1, stride=stride, bias=False),
                                      nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        s = x if self.down is None else self.down(x)
        return F.relu(y + s)


class ResNet(nn.Module):
    """Small ResNet for 28x28: stem conv3x3 16 + BN + ReLU + maxpool 2 (-> 14x14; the pool keeps
    the simulator fast), three stages of one basic block each, 16/32/64 channels (14x14, 7x7, 4x4),
    stride-2 downsampling through 1x1 conv + BN shortcuts, global average pool, fc 10.
    About 78k weights and 2.6 M multiply-accumulates per image."""

    def __init__(self, widths=(16, 32, 64), blocks=1):
        super().__init__()
        self.stem = AConv2d(1, widths[0], 3, padding=1, bias=False)
        self.stem_bn = nn.BatchNorm2d(widths[0])
        stages = []
        cin = widths[0]
        for i, w in enumerate(widths):
            for b in range(blocks):
                stride = 2 if (i > 0 and b == 0) else 1
                stages.append(BasicBlock(cin, w, stride))
                cin = w
        self.blocks = nn.ModuleList(stages)
        self.fc = ALinear(cin, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.stem_bn(self.stem(x))), 2)
        for blk in self.blocks:
            x = blk(x)
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(x)


class ViTBlock(nn.Module):
    """Pre-norm transformer encoder block: x + proj(attention(ln1(x))), then
    x + fc2(gelu(fc1(ln2(x)))). q, k, v, proj, fc1 and fc2 are analog (on tiles); the two
    products of attention (q·kᵀ, softmax·v) multiply activations by activations and stay
    digital, as do the layer norms and the softmax."""

    def __init__(self, dim, heads, hidden):
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.ln1 = nn.LayerNorm(dim)
        self.q = ALinear(dim, dim)
        self.k = ALinear(dim, dim)
        self.v = ALinear(dim, dim)
        self.proj = ALinear(dim, dim)
        self.ln2 = nn.LayerNorm(dim)
        self.fc1 = ALinear(dim, hidden)
        self.fc2 = ALinear(hidden, dim)

    def forward(self, x):
        B, T = x.shape[0], x.shape[1]  # (indexing, not unpacking: torch.fx can trace it)
        H, d = self.heads, self.head_dim
        h = self.ln1(x)
        q = self.q(h).reshape(B, T, H, d).transpose(1, 2)     # (B, H, T, d)
        k = self.k(h).reshape(B, T, H, d).permute(0, 2, 3, 1)  # (B, H, d, T)
        v = self.v(h).reshape(B, T, H, d).transpose(1, 2)     # (B, H, T, d)
        a = torch.softmax((q @ k) * d ** -0.5, dim=-1)        # (B, H, T, T)
        o = (a @ v).transpose(1, 2).reshape(B, T, H * d)
        x = x + self.proj(o)
        return x + self.fc2(F.gelu(self.fc1(self.ln2(x))))


class ViT(nn.Module):
    """A small vision transformer for 28x28: 7x7 patches (a conv with stride 7: 16 tokens of
    dim 32), a learned position embedding, two pre-norm encoder blocks (2 heads, MLP 64, GELU),
    a final layer norm, mean over the tokens, linear 32 -> 10."""

    def __init__(self, dim=32, depth=2, heads=2, hidden=64, patch=7):
        super().__init__()
        self.patch = AConv2d(1, dim, patch, stride=patch)
        tokens = (28 // patch) ** 2
        self.pos = nn.Parameter(torch.randn(1, tokens, dim) * 0.02)
        self.blocks = nn.Sequential(*[ViTBlock(dim, heads, hidden) for _ in range(depth)])
        self.ln = nn.LayerNorm(dim)
        self.head = ALinear(dim, 10)

    def forward(self, x):
        t = self.patch(x).flatten(2).transpose(1, 2) + self.pos  # (B, 16, 32)
        t = self.blocks(t)
        return self.head(self.ln(t).mean(1))


def build(name):
    if name == "vit":
        return ViT()
    if name == "mlp":
        return MLP()
    if name == "lenet5":
        return LeNet5()
    if name == "resnet":
        return ResNet()
    raise ValueError(f"[zoo.models] unknown model '{name}' (mlp, lenet5, resnet, vit)")
