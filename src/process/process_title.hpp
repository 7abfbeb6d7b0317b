#pragma once

// Process titles as ps shows them ("forq: master", "forq: worker 3 [draining]"): the master
// and each worker set theirs. Below both, so a worker need not include the master.

#include <string>

namespace forq::process {

// Once, in main(), with its argv (before anything keeps pointers into it); set_process_title
// truncates to the space argv had.
void init_process_title(int argc, char** argv);
void set_process_title(const std::string& title);

} // namespace forq::process
