// What forq::run refuses before it starts anything: the program's handlers against the
// built-ins and the configuration (src/worker/setup.cpp, check_handlers), and queues' default
// handlers that no one provides.
#include "config/config.hpp"
#include "forq/forq.hpp"
#include "worker/worker.hpp"

#include <gtest/gtest.h>

namespace {

forq::handler some_handler() {
  return [](const forq::job&, forq::context&) -> boost::asio::awaitable<forq::result> {
    co_return forq::result::success();
  };
}

forq::config with_exec_handler(std::string name) {
  forq::config c;
  forq::config::handler_spec s;
  s.name = std::move(name);
  s.exec = {"true"};
  c.handlers.push_back(s);
  return c;
}

std::string why(const forq::config& c, const forq::handler_map& program) {
  return forq::worker::check_handlers(c, program).value_or("accepted");
}

TEST(program_handlers, are_accepted_beside_the_built_ins_and_the_configured_ones) {
  forq::handler_map program{{"resize", some_handler()}};
  EXPECT_EQ(why(with_exec_handler("thumbnail"), program), "accepted");
  auto all = forq::worker::worker_handlers(with_exec_handler("thumbnail"), program);
  for (const char* name : {"noop", "echo", "sleep", "fail", "thumbnail", "resize"})
    EXPECT_EQ(all.count(name), 1u) << name;
}

TEST(program_handlers, may_not_take_a_name_already_used_or_not_allowed) {
  const forq::config defaults;
  EXPECT_NE(why(defaults, {{"echo", some_handler()}}).find("name of a built-in"),
            std::string::npos);
  EXPECT_NE(why(with_exec_handler("resize"), {{"resize", some_handler()}})
                .find("both the program's and configured"),
            std::string::npos);
  EXPECT_NE(why(defaults, {{"has space", some_handler()}}).find("is not allowed"),
            std::string::npos);
  EXPECT_NE(why(defaults, {{"empty", forq::handler()}}).find("is empty"), std::string::npos);
}

TEST(program_handlers, a_queue_s_default_handler_must_exist) {
  forq::config c = with_exec_handler("thumbnail");
  c.queues = {{"images", 1, "thumbnail", {}}, {"pings", 1, "noop", {}}, {"mine", 1, "resize", {}}};
  EXPECT_EQ(why(c, {{"resize", some_handler()}}), "accepted");
  auto msg = why(c, {});
  EXPECT_NE(msg.find("queue \"mine\": default handler \"resize\" is not a handler"),
            std::string::npos)
      << msg;
}

} // namespace
