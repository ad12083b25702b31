// ONNX import: evaluates nodes whose inputs are all constants, shape arithmetic included (the
// batch size is unknown, so its marker may be moved around but never computed with).
#include "nets/onnx_importer.h"

#ifdef PCMSIM_HAVE_ONNX

#include <algorithm>
#include <cmath>

namespace pcmsim::nets::onnx_detail {

void Importer::fold(const Node& n) {
  const std::string& op = n.op_type();
  auto in = [&](int i) -> const Const& { return need_const(n, i, "input"); };
  if (op == "Identity" || op == "Dropout") {
    set_const(n, in(0));
  } else if (op == "Cast") {
    Const c = in(0);
    const Index to = attr_int(n, "to", 1);
    c.is_int = to != onnx::TensorProto::FLOAT && to != onnx::TensorProto::DOUBLE &&
               to != onnx::TensorProto::FLOAT16;
    if (c.is_int)
      for (double& x : c.v) x = x == kBatch ? x : std::trunc(x);
    set_const(n, std::move(c));
  } else if (op == "ConstantOfShape") {
    const Const& s = in(0);
    Const c;
    Index numel = 1;
    for (double d : s.v) {
      if (d == kBatch) fail(n, "the shape depends on the batch size");
      if (d < 0 || d > kMaxElements) fail(n, concat("shape entry ", d, " out of range"));
      c.dims.push_back(static_cast<Index>(d));
      numel *= static_cast<Index>(d);
      if (numel > kMaxElements) fail(n, "shape too large");
    }
    double value = 0;
    if (const auto* a = attr(n, "value")) {
      Const v = tensor(a->t(), concat("node '", n.name(), "' value"));
      if (v.v.size() != 1) fail(n, "value must hold one element");
      value = v.v[0];
      c.is_int = v.is_int;
    }
    c.v.assign(static_cast<std::size_t>(numel), value);
    set_const(n, std::move(c));
  } else if (op == "Shape") {
    Const c;
    c.is_int = true;
    const Const& x = in(0);
    c.dims = {static_cast<Index>(x.dims.size())};
    for (Index d : x.dims) c.v.push_back(static_cast<double>(d));
    set_const(n, std::move(c));
  } else if (op == "Gather") {
    const Const &data = in(0), &idx = in(1);
    const Index r = static_cast<Index>(data.dims.size());
    Index axis = attr_int(n, "axis", 0);
    if (axis < 0) axis += r;
    if (axis < 0 || axis >= r) fail(n, concat("axis out of range for rank ", r));
    Index outer = 1, inner = 1;
    for (Index d = 0; d < axis; ++d) outer *= data.dims[d];
    for (Index d = axis + 1; d < r; ++d) inner *= data.dims[d];
    const Index len = data.dims[axis];
    Const c;
    c.is_int = data.is_int;
    c.dims.assign(data.dims.begin(), data.dims.begin() + axis);
    c.dims.insert(c.dims.end(), idx.dims.begin(), idx.dims.end());
    c.dims.insert(c.dims.end(), data.dims.begin() + axis + 1, data.dims.end());
    for (Index o = 0; o < outer; ++o)
      for (double iv : idx.v) {
        Index i = to_index(iv);
        if (i < 0) i += len;
        if (i < 0 || i >= len) fail(n, concat("index ", iv, " out of range [0, ", len, ")"));
        for (Index k = 0; k < inner; ++k) c.v.push_back(data.v[(o * len + i) * inner + k]);
      }
    set_const(n, std::move(c));
  } else if (op == "Unsqueeze" || op == "Squeeze") {
    Const c = in(0);
    std::vector<Index> axes = opset_ >= 13 && input(n, 1)
                                  ? [&] {
                                      std::vector<Index> a;
                                      for (double x : in(1).v) a.push_back(to_index(x));
                                      return a;
                                    }()
                                  : attr_ints(n, "axes", {});
    if (op == "Unsqueeze") {
      const Index r = static_cast<Index>(c.dims.size() + axes.size());
      for (Index& a : axes) a = a < 0 ? a + r : a;
      std::sort(axes.begin(), axes.end());
      for (Index a : axes) {
        if (a < 0 || a > static_cast<Index>(c.dims.size())) fail(n, "axis out of range");
        c.dims.insert(c.dims.begin() + a, 1);
      }
    } else {
      const Index r = static_cast<Index>(c.dims.size());
      std::vector<Index> keep;
      for (Index d = 0; d < r; ++d) {
        bool drop = axes.empty() ? c.dims[d] == 1
                                 : std::any_of(axes.begin(), axes.end(), [&](Index a) {
                                     return (a < 0 ? a + r : a) == d;
                                   });
        if (drop && c.dims[d] != 1) fail(n, concat("axis ", d, " has size ", c.dims[d], ", not 1"));
        if (!drop) keep.push_back(c.dims[d]);
      }
      c.dims = keep;
    }
    set_const(n, std::move(c));
  } else if (op == "Concat") {
    Const c;
    const Const& first = in(0);
    const Index r = static_cast<Index>(first.dims.size());
    Index axis = attr_int(n, "axis", 0);
    if (axis < 0) axis += r;
    if (axis < 0 || axis >= r) fail(n, "axis out of range");
    c.dims = first.dims;
    c.dims[axis] = 0;
    c.is_int = first.is_int;
    Index outer = 1;
    for (Index d = 0; d < axis; ++d) outer *= first.dims[d];
    for (int i = 0; i < n.input_size(); ++i) {
      const Const& x = in(i);
      if (static_cast<Index>(x.dims.size()) != r) fail(n, "inputs of different ranks");
      for (Index d = 0; d < r; ++d)
        if (d != axis && x.dims[d] != first.dims[d]) fail(n, "inputs differ outside the axis");
      c.dims[axis] += x.dims[axis];
    }
    for (Index o = 0; o < outer; ++o)
      for (int i = 0; i < n.input_size(); ++i) {
        const Const& x = in(i);
        const Index chunk = x.numel() / std::max<Index>(outer, 1);
        c.v.insert(c.v.end(), x.v.begin() + o * chunk, x.v.begin() + (o + 1) * chunk);
      }
    set_const(n, std::move(c));
  } else if (op == "Slice") {
    const Const& x = in(0);
    std::vector<Index> starts, ends, axes, steps;
    if (opset_ >= 10) {
      for (double v : in(1).v) starts.push_back(to_index(v));
      for (double v : in(2).v) ends.push_back(to_index(v));
      if (input(n, 3))
        for (double v : in(3).v) axes.push_back(to_index(v));
      if (input(n, 4))
        for (double v : in(4).v) steps.push_back(to_index(v));
    } else {
      starts = attr_ints(n, "starts", {});
      ends = attr_ints(n, "ends", {});
      axes = attr_ints(n, "axes", {});
    }
    const Index r = static_cast<Index>(x.dims.size());
    if (axes.empty())
      for (Index d = 0; d < static_cast<Index>(starts.size()); ++d) axes.push_back(d);
    if (steps.empty()) steps.assign(starts.size(), 1);
    if (ends.size() != starts.size() || axes.size() != starts.size() || steps.size() != starts.size())
      fail(n, "starts, ends, axes and steps differ in length");
    std::vector<Index> b(static_cast<std::size_t>(r), 0), st(static_cast<std::size_t>(r), 1),
        len(x.dims.begin(), x.dims.end());
    for (std::size_t k = 0; k < starts.size(); ++k) {
      Index a = axes[k] < 0 ? axes[k] + r : axes[k];
      if (a < 0 || a >= r) fail(n, "axis out of range");
      const Index dim = x.dims[a], s = steps[k];
      if (s == 0) fail(n, "step 0");
      auto clampi = [&](Index v, Index lo, Index hi) {
        if (v < 0) v += dim;
        return std::min(std::max(v, lo), hi);
      };
      Index s0 = s > 0 ? clampi(starts[k], 0, dim) : clampi(starts[k], -1, dim - 1);
      Index e0 = s > 0 ? clampi(ends[k], 0, dim) : clampi(ends[k], -1, dim - 1);
      b[a] = s0;
      st[a] = s;
      len[a] = s > 0 ? std::max<Index>(0, (e0 - s0 + s - 1) / s)
                     : std::max<Index>(0, (s0 - e0 + (-s) - 1) / (-s));
    }
    Const c;
    c.is_int = x.is_int;
    c.dims = len;
    const Index total = c.numel();
    const std::vector<Index> stride = row_major_strides(x.dims);
    std::vector<Index> idx(static_cast<std::size_t>(r), 0);
    for (Index o = 0; o < total; ++o) {
      Index off = 0;
      for (Index d = 0; d < r; ++d) off += (b[d] + idx[d] * st[d]) * stride[d];
      c.v.push_back(x.v[off]);
      for (Index d = r - 1; d >= 0; --d) {
        if (++idx[d] < len[d]) break;
        idx[d] = 0;
      }
    }
    set_const(n, std::move(c));
  } else if (op == "Reshape") {
    Const c = in(0);
    const Const& s = in(1);
    std::vector<Index> dims;
    Index known = 1, infer = -1;
    for (std::size_t d = 0; d < s.v.size(); ++d) {
      Index v = to_index(s.v[d]);
      if (s.v[d] == kBatch) fail(n, "reshaping a constant to the batch size");
      if (v == 0 && !attr_int(n, "allowzero", 0)) v = d < c.dims.size() ? c.dims[d] : 0;
      if (v == -1) {
        if (infer >= 0) fail(n, "two -1 entries");
        infer = static_cast<Index>(d);
      } else if (v < 0) {
        fail(n, concat("shape entry ", v));
      } else {
        known *= v;
      }
      dims.push_back(v);
    }
    if (infer >= 0) dims[infer] = known ? c.numel() / known : 0;
    c.dims = dims;
    if (c.numel() != static_cast<Index>(c.v.size()))
      fail(n, concat("cannot reshape ", c.v.size(), " values to ", shape_str(dims)));
    set_const(n, std::move(c));
  } else if (op == "Transpose") {
    const Const& x = in(0);
    const Index r = static_cast<Index>(x.dims.size());
    std::vector<Index> perm = attr_ints(n, "perm", {});
    if (perm.empty())
      for (Index d = r - 1; d >= 0; --d) perm.push_back(d);
    if (static_cast<Index>(perm.size()) != r) fail(n, "perm has the wrong length");
    Const c;
    c.is_int = x.is_int;
    const std::vector<Index> stride = row_major_strides(x.dims);
    std::vector<Index> idx(static_cast<std::size_t>(r), 0);
    std::vector<bool> seen(static_cast<std::size_t>(r), false);
    for (Index d = 0; d < r; ++d) {
      if (perm[d] < 0 || perm[d] >= r || seen[perm[d]]) fail(n, "perm is not a permutation");
      seen[perm[d]] = true;
      c.dims.push_back(x.dims[perm[d]]);
    }
    const Index total = x.numel();
    for (Index o = 0; o < total; ++o) {
      Index off = 0;
      for (Index d = 0; d < r; ++d) off += idx[d] * stride[perm[d]];
      c.v.push_back(x.v[off]);
      for (Index d = r - 1; d >= 0; --d) {
        if (++idx[d] < c.dims[d]) break;
        idx[d] = 0;
      }
    }
    set_const(n, std::move(c));
  } else if (op == "Add" || op == "Sub" || op == "Mul" || op == "Div" || op == "Pow" ||
             op == "Equal" || op == "Where") {
    // Where(cond, a, b): cond broadcast like a and b (exporters use it on shape values).
    const bool where = op == "Where";
    const Const &a = in(where ? 1 : 0), &b = in(where ? 2 : 1);
    const Const* cond = where ? &in(0) : nullptr;
    auto bs = broadcast_shapes(Shape{a.dims}, Shape{b.dims});
    if (!a.dims.empty() && !b.dims.empty() && !bs) fail(n, "shapes do not broadcast");
    Const c;
    c.is_int = (a.is_int && b.is_int) || op == "Equal";
    c.dims = a.dims.empty() ? b.dims : b.dims.empty() ? a.dims : bs->dims;
    if (cond) {
      auto bc = broadcast_shapes(Shape{c.dims}, Shape{cond->dims});
      if (!cond->dims.empty() && !c.dims.empty() && !bc) fail(n, "shapes do not broadcast");
      if (!cond->dims.empty()) c.dims = c.dims.empty() ? cond->dims : bc->dims;
    }
    const Index total = c.numel(), r = static_cast<Index>(c.dims.size());
    auto offset = [&](const Const& x, const std::vector<Index>& idx) {
      Index off = 0;
      const Index xr = static_cast<Index>(x.dims.size());
      for (Index d = 0; d < xr; ++d) {
        const Index i = x.dims[d] == 1 ? 0 : idx[d + (r - xr)];
        off = off * x.dims[d] + i;
      }
      return off;
    };
    std::vector<Index> idx(static_cast<std::size_t>(r), 0);
    for (Index o = 0; o < total; ++o) {
      const double u = a.v[offset(a, idx)], w = b.v[offset(b, idx)];
      if (where || op == "Equal") {  // selecting and comparing may involve the batch marker
        c.v.push_back(where ? (cond->v[offset(*cond, idx)] != 0 ? u : w) : double(u == w));
        for (Index d = r - 1; d >= 0; --d) {
          if (++idx[d] < c.dims[d]) break;
          idx[d] = 0;
        }
        continue;
      }
      if (u == kBatch || w == kBatch) fail(n, "computes with the batch size, which is not known");
      double y = op == "Add" ? u + w : op == "Sub" ? u - w : op == "Mul" ? u * w
                 : op == "Pow" ? std::pow(u, w) : (c.is_int ? std::trunc(u / w) : u / w);
      if (!std::isfinite(y)) fail(n, "result is not finite");
      c.v.push_back(y);
      for (Index d = r - 1; d >= 0; --d) {
        if (++idx[d] < c.dims[d]) break;
        idx[d] = 0;
      }
    }
    set_const(n, std::move(c));
  } else if (op == "Neg" || op == "Sqrt") {
    Const c = in(0);
    for (double& x : c.v) {
      if (x == kBatch) fail(n, "computes with the batch size, which is not known");
      x = op == "Neg" ? -x : std::sqrt(x);
      if (!std::isfinite(x)) fail(n, "result is not finite");
    }
    set_const(n, std::move(c));
  } else {
    fail(n, "cannot be evaluated on constant inputs by this importer");
  }
}

}  // namespace pcmsim::nets::onnx_detail

#endif  // PCMSIM_HAVE_ONNX
