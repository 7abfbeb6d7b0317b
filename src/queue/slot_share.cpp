// slot_share (consumer.hpp): slots shared between the consumers of one process by weight.
#include "queue/consumer.hpp"

#include <algorithm>

namespace forq::queue {

namespace asio = boost::asio;

std::size_t slot_share::join(double weight, asio::steady_timer& wake) {
  members_.push_back(member{weight > 0 ? weight : 1, &wake});
  return members_.size() - 1;
}

std::size_t slot_share::room(std::size_t me) const {
  std::size_t used = 0;
  double weights = members_[me].weight;
  bool contended = false;
  for (std::size_t i = 0; i < members_.size(); ++i) {
    used += members_[i].used + members_[i].reserved;
    if (i != me && members_[i].hungry) {
      weights += members_[i].weight;
      contended = true;
    }
  }
  std::size_t free = used < total_ ? total_ - used : 0;
  if (!contended) return free;
  // Others wait for slots too: no more than this queue's weighted share of the total.
  auto share = static_cast<std::size_t>(
      std::ceil(static_cast<double>(total_) * members_[me].weight / weights));
  auto held = members_[me].used + members_[me].reserved;
  auto mine = share > held ? share - held : 0;
  return std::min(free, mine);
}

void slot_share::finished(std::size_t me) {
  --members_[me].used;
  wake_others(me);
}

void slot_share::release(std::size_t me, std::size_t n) {
  members_[me].reserved -= std::min(n, members_[me].reserved);
  wake_others(me);
}

void slot_share::hungry(std::size_t me, bool h) {
  if (members_[me].hungry == h) return;
  members_[me].hungry = h;
  if (!h) wake_others(me); // its claim on a share is gone
}

void slot_share::wake_others(std::size_t me) {
  for (std::size_t i = 0; i < members_.size(); ++i)
    if (i != me) members_[i].wake->cancel();
}

} // namespace forq::queue
