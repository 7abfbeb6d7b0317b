// The forq executable: forq's command line with the handlers every forq has.
#include "forq/forq.hpp"

int main(int argc, char** argv) {
  return forq::run(argc, argv);
}
