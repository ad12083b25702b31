// The cost model's view of a network on a configured chip (cost/cost_model.h): the mapping
// plan, each mappable layer's work per inference (output positions, converter bits after
// layer_precision, element-wise digital operations) and the unit cell and digital unit,
// derived from the network's shapes and the SimulationConfig (no weights are read).
#pragma once

#include "cost/cost_model.h"
#include "nets/network.h"
#include "nets/simulation.h"

namespace pcmsim::nets {

// Throws std::invalid_argument for an invalid configuration or network, or a layer_precision
// entry naming a layer the network does not have.
cost::CostInput cost_input(const Network& net, const SimulationConfig& config);

// compute_cost(cost_input(net, config), params) with the peak figures at config.io's bits.
cost::CostReport network_cost(const Network& net, const SimulationConfig& config,
                              const cost::CostParams& params);

}  // namespace pcmsim::nets
