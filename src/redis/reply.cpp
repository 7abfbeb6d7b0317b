#include "forq/redis/reply.hpp"

#include <hiredis/hiredis.h>
#include <hiredis/read.h>

#include <charconv>

namespace forq::redis {
namespace {

// The one place a hiredis reply tree becomes a forq reply.
reply convert(const redisReply* r) {
  switch (r->type) {
  case REDIS_REPLY_STRING:
    return reply::make_string(std::string(r->str, r->len));
  case REDIS_REPLY_STATUS:
    return reply::make_status(std::string(r->str, r->len));
  case REDIS_REPLY_ERROR:
    return reply::make_error(std::string(r->str, r->len));
  case REDIS_REPLY_INTEGER:
    return reply::make_integer(r->integer);
  case REDIS_REPLY_ARRAY: {
    std::vector<reply> items;
    items.reserve(r->elements);
    for (std::size_t i = 0; i < r->elements; ++i)
      items.push_back(convert(r->element[i]));
    return reply::make_array(std::move(items));
  }
  default:
    return reply{};
  }
}

} // namespace

reply reply::make_integer(std::int64_t v) {
  reply r;
  r.kind_ = kind::integer;
  r.integer_ = v;
  return r;
}

reply reply::make_array(std::vector<reply> items) {
  reply r;
  r.kind_ = kind::array;
  r.elements_ = std::move(items);
  return r;
}

std::optional<std::string_view> reply::as_string() const {
  if (kind_ == kind::string || kind_ == kind::status) return std::string_view(text_);
  return std::nullopt;
}

std::optional<std::int64_t> reply::as_integer() const {
  if (kind_ == kind::integer) return integer_;
  if (kind_ != kind::string) return std::nullopt;
  std::int64_t v = 0;
  auto [end, ec] = std::from_chars(text_.data(), text_.data() + text_.size(), v);
  if (ec != std::errc{} || end != text_.data() + text_.size() || text_.empty()) return std::nullopt;
  return v;
}

std::string_view reply::error_code() const {
  if (kind_ != kind::error) return {};
  std::string_view t = text_;
  return t.substr(0, t.find(' '));
}

bool reply::is_retry_later() const {
  auto code = error_code();
  return code == "LOADING" || code == "BUSY" || code == "TRYAGAIN" || code == "MASTERDOWN";
}

bool reply::is_noscript() const {
  return error_code() == "NOSCRIPT";
}

std::string reply::to_string() const {
  switch (kind_) {
  case kind::string:
    return "\"" + text_ + "\"";
  case kind::status:
    return text_;
  case kind::error:
    return "(error) " + text_;
  case kind::integer:
    return "(integer) " + std::to_string(integer_);
  case kind::nil:
    return "(nil)";
  case kind::array: {
    std::string out = "[";
    for (std::size_t i = 0; i < elements_.size(); ++i)
      out += (i ? ", " : "") + elements_[i].to_string();
    return out + "]";
  }
  }
  return "?";
}

reply_parser::reply_parser()
    : reader_(redisReaderCreate()) {
  if (!reader_) throw std::bad_alloc();
  reader_->maxbuf = 0; // keep the read buffer, do not shrink it after every large reply
}

reply_parser::~reply_parser() {
  redisReaderFree(reader_);
}

void reply_parser::feed(std::string_view bytes) {
  if (!bytes.empty()) redisReaderFeed(reader_, bytes.data(), bytes.size());
}

reply_parser::status reply_parser::next(reply& out) {
  void* raw = nullptr;
  if (redisReaderGetReply(reader_, &raw) != REDIS_OK) return status::protocol_error;
  if (!raw) return status::need_more;
  out = convert(static_cast<redisReply*>(raw));
  freeReplyObject(raw);
  return status::reply;
}

std::string reply_parser::error_text() const {
  return reader_->errstr;
}

void reply_parser::reset() {
  redisReaderFree(reader_);
  reader_ = redisReaderCreate();
  if (!reader_) throw std::bad_alloc();
  reader_->maxbuf = 0;
}

} // namespace forq::redis
