#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <type_traits>

namespace forq::redis {

// One or more commands sent together, formatted once as RESP arrays of bulk strings (binary
// safe: every argument goes with its length). exec() answers with one reply per command.
class request {
 public:
  request() = default;
  template <class... Args>
  explicit request(std::string_view command, const Args&... args) {
    push(command, args...);
  }

  // Appends one command. Arguments are strings or integers.
  template <class... Args>
  request& push(std::string_view command, const Args&... args) {
    payload_ += '*';
    payload_ += std::to_string(1 + sizeof...(Args));
    payload_ += "\r\n";
    add(command);
    (add(args), ...);
    ++commands_;
    return *this;
  }

  // Appends one command whose arguments are in a range of strings.
  template <class Range>
  request& push_range(std::string_view command, const Range& args) {
    std::size_t n = 1;
    for (const auto& a : args)
      (void)a, ++n;
    payload_ += '*';
    payload_ += std::to_string(n);
    payload_ += "\r\n";
    add(command);
    for (const auto& a : args)
      add(std::string_view(a));
    ++commands_;
    return *this;
  }

  // Appends every command of another request.
  request& append(const request& other) {
    payload_ += other.payload_;
    commands_ += other.commands_;
    return *this;
  }

  // Appends `count` commands already formatted as above (a slice of another request's payload).
  request& append_formatted(std::string_view payload, std::size_t count) {
    payload_.append(payload.data(), payload.size());
    commands_ += count;
    return *this;
  }

  std::size_t commands() const { return commands_; }
  const std::string& payload() const { return payload_; }
  bool empty() const { return commands_ == 0; }

 private:
  void add(std::string_view arg) {
    payload_ += '$';
    payload_ += std::to_string(arg.size());
    payload_ += "\r\n";
    payload_.append(arg.data(), arg.size());
    payload_ += "\r\n";
  }
  template <class T>
  requires std::is_integral_v<T>
  void add(T v) { add(std::string_view(std::to_string(v))); }
  void add(const std::string& s) { add(std::string_view(s)); }
  void add(const char* s) { add(std::string_view(s)); }

  std::string payload_;
  std::size_t commands_ = 0;
};

} // namespace forq::redis
