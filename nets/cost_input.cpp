#include "nets/cost_input.h"

#include "core/error.h"

namespace pcmsim::nets {
namespace {

// Element-wise digital operations of layer `L` per inference, excluding any matrix product.
double elementwise_ops(const Layer& L, const LayerShapes& shapes) {
  const double out = static_cast<double>(shapes.output.size());
  const double in = shapes.inputs.empty() ? 0.0 : static_cast<double>(shapes.inputs[0].size());
  const double act = L.activation == Activation::none ? 0.0 : out;
  switch (L.kind) {
    case LayerKind::linear:
    case LayerKind::conv2d:
      return (L.bias.data.empty() ? 0.0 : out) + act;
    case LayerKind::batchnorm1d:
    case LayerKind::batchnorm2d:
      return 2.0 * out + act;  // one multiply and one add per value
    case LayerKind::softmax:
    case LayerKind::log_softmax:
      return 3.0 * out;  // exponential, sum, division (or logarithm)
    case LayerKind::maxpool2d:
    case LayerKind::avgpool2d:
      return out * static_cast<double>(L.kernel_size[0] * L.kernel_size[1]);
    case LayerKind::global_avgpool:
      return in;
    case LayerKind::add:
      return out + act;
    case LayerKind::flatten:
    case LayerKind::identity:
    case LayerKind::dropout:
      return 0.0;
    default:
      return is_activation(L.kind) ? out : 0.0;
  }
}

}  // namespace

cost::CostInput cost_input(const Network& net, const SimulationConfig& config) {
  config.validate();
  check_layer_names(net, config);
  const std::vector<LayerShapes> shapes = infer_shapes(net);
  cost::CostInput input;
  input.plan = mapping::plan(placed_layer_matrices(net, config), config.chip, config.mapper);
  check_replicas_are_analog(input.plan, config);
  input.planes = config.cell.num_planes();
  input.adc_columns = config.io.adc_columns;
  input.analog_readout = config.cell.readout == core::PlaneReadout::analog;
  input.digital = config.digital;
  // The element-wise work of the layers after a matrix layer (up to the next one) is charged to
  // it; anything before the first matrix layer to the first.
  int current = -1;
  double before_first = 0;
  for (std::size_t i = 0; i < net.layers.size(); ++i) {
    const Layer& L = net.layers[i];
    if (is_matrix(L.kind)) {
      cost::LayerWork w;
      w.name = L.name;
      const auto& od = shapes[i].output.dims;
      w.positions = L.kind == LayerKind::conv2d ? od[1] * od[2] : 1;
      w.p_in = config.io.p_in;
      w.p_out = config.io.p_out;
      w.b_in = config.io.b_in;
      if (const auto it = config.layer_precision.find(L.name); it != config.layer_precision.end()) {
        if (it->second.p_in >= 0) w.p_in = it->second.p_in;
        if (it->second.p_out >= 0) w.p_out = it->second.p_out;
      }
      input.layers.push_back(std::move(w));
      current = static_cast<int>(input.layers.size()) - 1;
    }
    const double ops = elementwise_ops(L, shapes[i]);
    if (current < 0)
      before_first += ops;
    else
      input.layers[static_cast<std::size_t>(current)].elementwise_ops += ops;
  }
  if (!input.layers.empty()) input.layers.front().elementwise_ops += before_first;
  return input;
}

cost::CostReport network_cost(const Network& net, const SimulationConfig& config,
                              const cost::CostParams& params) {
  return cost::compute_cost(cost_input(net, config), params, config.io.p_in, config.io.p_out,
                            config.io.b_in);
}

}  // namespace pcmsim::nets
