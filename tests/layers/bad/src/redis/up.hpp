#pragma once
// A fixture for layers_check: the Redis layer reaching up into the queue stage.
#include "queue/consumer.hpp"
