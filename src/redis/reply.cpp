#include "forq/redis/reply.hpp"

#include <hiredis/hiredis.h>
#include <hiredis/read.h>

#include <charconv>

namespace forq::redis {
// The one place hiredis's parse becomes forq replies: hiredis calls these as it reads, and each
// builds the reply where it belongs, the parser's top-level slot or its parent array's element.
struct reply_builder {
  static reply* slot(const redisReadTask* t) {
    if (t->parent)
      return &static_cast<reply*>(t->parent->obj)->elements_[static_cast<std::size_t>(t->idx)];
    return static_cast<reply*>(t->privdata);
  }
  static reply* reset(const redisReadTask* t, reply::kind k) {
    reply* r = slot(t);
    r->kind_ = k;
    r->text_.clear();
    r->integer_ = 0;
    r->elements_.clear();
    return r;
  }
  static void* string(const redisReadTask* t, char* s, size_t len) {
    auto k = t->type == REDIS_REPLY_ERROR    ? reply::kind::error
             : t->type == REDIS_REPLY_STATUS ? reply::kind::status
                                             : reply::kind::string;
    try {
      reply* r = reset(t, k);
      r->text_.assign(s, len);
      return r;
    } catch (...) { // never unwind through hiredis's C frames
      return nullptr;
    }
  }
  static void* array(const redisReadTask* t, int n) {
    // hiredis 0.14 does not bound multi-bulk lengths: a corrupt or hostile length must become
    // a protocol error, not a huge allocation. Returning null makes hiredis fail the parse.
    if (n < 0 || static_cast<std::size_t>(n) > reply_parser::max_array_elements) return nullptr;
    try {
      reply* r = reset(t, reply::kind::array);
      r->elements_.resize(static_cast<std::size_t>(n));
      return r;
    } catch (...) { // never unwind through hiredis's C frames
      return nullptr;
    }
  }
  static void* integer(const redisReadTask* t, long long v) {
    reply* r = reset(t, reply::kind::integer);
    r->integer_ = v;
    return r;
  }
  static void* nil(const redisReadTask* t) { return reset(t, reply::kind::nil); }
  static void release(void*) {} // every object lives in the parser's slot or its parent
};

namespace {

redisReplyObjectFunctions builder_functions{&reply_builder::string, &reply_builder::array,
                                            &reply_builder::integer, &reply_builder::nil,
                                            &reply_builder::release};

redisReader* make_reader(reply* top) {
  redisReader* r = redisReaderCreateWithFunctions(&builder_functions);
  if (!r) throw std::bad_alloc();
  r->privdata = top;
  r->maxbuf = 0; // keep the read buffer, do not shrink it after every large reply
  return r;
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

bool reply::is_write_refused() const {
  auto code = error_code();
  if (code == "OOM" || code == "READONLY" || code == "MISCONF") return true;
  // A script's error wraps the command's: "ERR Error running script ...: -OOM command ...", or
  // on Redis 7 the command's own error with " script: ..." appended.
  if (kind_ != kind::error) return false;
  std::string_view t = text_;
  return t.find("OOM command not allowed") != std::string_view::npos ||
         t.find("READONLY You can't write") != std::string_view::npos ||
         t.find("MISCONF ") != std::string_view::npos;
}

bool reply::is_nogroup() const {
  if (kind_ != kind::error) return false;
  std::string_view t = text_;
  return error_code() == "NOGROUP" || t.find("NOGROUP") != std::string_view::npos ||
         (error_code() == "UNBLOCKED" && t.find("no longer exists") != std::string_view::npos);
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
    : reader_(make_reader(&top_)) {}

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
  out = std::move(top_);
  return status::reply;
}

std::string reply_parser::error_text() const {
  return reader_->errstr;
}

void reply_parser::reset() {
  redisReaderFree(reader_);
  reader_ = make_reader(&top_);
}

} // namespace forq::redis
