// For the croniter oracle (cron_oracle.py): reads lines "EXPRESSION<TAB>EPOCH<TAB>N" and prints,
// per line, the N next instants after EPOCH (UTC, epoch seconds, space-separated), or
// "refused: <why>".
#include "schedule/cron.hpp"

#include <iostream>
#include <string>

int main() {
  std::string line;
  while (std::getline(std::cin, line)) {
    auto tab1 = line.find('\t');
    auto tab2 = line.find('\t', tab1 + 1);
    if (tab1 == std::string::npos || tab2 == std::string::npos) {
      std::cout << "bad input line\n";
      continue;
    }
    auto c = forq::schedule::parse_cron(line.substr(0, tab1));
    if (!c) {
      std::cout << "refused: " << c.error().message() << '\n';
      continue;
    }
    forq::schedule::sys_seconds t(std::chrono::seconds(std::stoll(line.substr(tab1 + 1))));
    int n = std::stoi(line.substr(tab2 + 1));
    std::string out;
    for (int i = 0; i < n; ++i) {
      auto next = forq::schedule::next_after(*c, t);
      if (!next) break;
      t = *next;
      out += (out.empty() ? "" : " ") + std::to_string(t.time_since_epoch().count());
    }
    std::cout << out << '\n';
  }
}
