#include "agent/control_channel.hpp"

namespace kindling::agent {

namespace ap = agent_protocol;

std::optional<Result<PreambleReader::Preamble>> PreambleReader::feed(std::string_view bytes) {
  using R = Result<Preamble>;
  auto newline = bytes.find('\n');
  std::size_t take = newline == std::string_view::npos ? bytes.size() : newline + 1;
  if (line_.size() + take > ap::kMaxPreambleBytes) return R(make_error("bad-preamble"));
  line_.append(bytes.substr(0, take));
  if (newline == std::string_view::npos) return std::nullopt;
  auto kind = ap::parse_preamble(line_);
  if (!kind) return R(make_error("unknown-preamble"));
  return R(Preamble{*kind, std::string(bytes.substr(take))});
}

bool ControlInbox::feed(std::string_view bytes) {
  if (broken_) return false;
  auto status = decoder_.feed(bytes);
  if (!status) {
    broken_ = true;
    broken_reason_ = status.error().message;
  }
  return !broken_;
}

std::optional<ControlInbox::Item> ControlInbox::next() {
  if (!broken_) {
    if (auto frame = decoder_.next()) {
      Item item;
      if (!frame->ok()) {
        item.kind = Item::Kind::kInvalid;
        item.error = frame->error().message;
        return item;
      }
      auto message = ap::parse_host_message(frame->value());
      if (!message) {
        item.kind = Item::Kind::kInvalid;
        item.error = message.error().message;
        return item;
      }
      item.message = std::move(message).value();
      return item;
    }
    // The decoder may have found an oversized header behind the last frame;
    // an empty feed asks it without waiting for more bytes.
    auto status = decoder_.feed({});
    if (!status) {
      broken_ = true;
      broken_reason_ = "frame larger than " + std::to_string(ap::kMaxFrameBytes) + " bytes";
    }
  }
  if (broken_ && !broken_reported_) {
    broken_reported_ = true;
    Item item;
    item.kind = Item::Kind::kBroken;
    item.error = broken_reason_;
    return item;
  }
  return std::nullopt;
}

}  // namespace kindling::agent
