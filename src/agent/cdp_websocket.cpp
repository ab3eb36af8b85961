#include "agent/cdp_websocket.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace kindling::agent {

namespace websocket {

namespace {

// SHA-1 only for the handshake's accept key (RFC 6455 4.2.2): the agent links
// no crypto library.
std::string sha1(std::string_view input) {
  std::uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
  std::string msg(input);
  std::uint64_t bit_len = static_cast<std::uint64_t>(input.size()) * 8;
  msg.push_back(static_cast<char>(0x80));
  while (msg.size() % 64 != 56) msg.push_back('\0');
  for (int i = 7; i >= 0; --i) msg.push_back(static_cast<char>((bit_len >> (i * 8)) & 0xff));
  auto rotl = [](std::uint32_t v, int n) { return (v << n) | (v >> (32 - n)); };
  for (std::size_t chunk = 0; chunk < msg.size(); chunk += 64) {
    std::uint32_t w[80];
    for (int i = 0; i < 16; ++i) {
      const auto* p = reinterpret_cast<const unsigned char*>(msg.data() + chunk + i * 4);
      w[i] = (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) | p[3];
    }
    for (int i = 16; i < 80; ++i) w[i] = rotl(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    std::uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; ++i) {
      std::uint32_t f, k;
      if (i < 20) f = (b & c) | (~b & d), k = 0x5A827999;
      else if (i < 40) f = b ^ c ^ d, k = 0x6ED9EBA1;
      else if (i < 60) f = (b & c) | (b & d) | (c & d), k = 0x8F1BBCDC;
      else f = b ^ c ^ d, k = 0xCA62C1D6;
      std::uint32_t t = rotl(a, 5) + f + e + k + w[i];
      e = d, d = c, c = rotl(b, 30), b = a, a = t;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
  }
  std::string out;
  for (std::uint32_t v : h)
    for (int i = 3; i >= 0; --i) out.push_back(static_cast<char>((v >> (i * 8)) & 0xff));
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string base64(std::string_view bytes) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  std::size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    std::uint32_t v = (std::uint32_t(static_cast<unsigned char>(bytes[i])) << 16) |
                      (std::uint32_t(static_cast<unsigned char>(bytes[i + 1])) << 8) |
                      static_cast<unsigned char>(bytes[i + 2]);
    for (int s = 18; s >= 0; s -= 6) out.push_back(kAlphabet[(v >> s) & 63]);
  }
  std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    std::uint32_t v = std::uint32_t(static_cast<unsigned char>(bytes[i])) << 16;
    if (rest == 2) v |= std::uint32_t(static_cast<unsigned char>(bytes[i + 1])) << 8;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(rest == 2 ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

std::string accept_key(std::string_view key) {
  return base64(sha1(std::string(key) + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"));
}

std::string handshake_request(std::string_view host, std::string_view path, std::string_view key) {
  std::string r = "GET ";
  r.append(path);
  r += " HTTP/1.1\r\nHost: ";
  r.append(host);
  r += "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ";
  r.append(key);
  r += "\r\nSec-WebSocket-Version: 13\r\n\r\n";
  return r;
}

std::optional<Result<std::size_t>> parse_handshake_response(std::string_view raw, std::string_view key) {
  using R = Result<std::size_t>;
  auto end = raw.find("\r\n\r\n");
  if (end == std::string_view::npos) {
    if (raw.size() > kMaxHandshakeResponseBytes) return R(make_error("websocket handshake response is too large"));
    return std::nullopt;
  }
  std::string_view head = raw.substr(0, end);
  auto first_line_end = head.find("\r\n");
  std::string_view status = head.substr(0, first_line_end);
  if (!status.starts_with("HTTP/1.1 101"))
    return R(make_error("Chromium refused the websocket: '" + std::string(status.substr(0, 80)) + "'"));
  bool upgrade = false, connection = false, accepted = false;
  std::string expected = accept_key(key);
  std::string_view rest = first_line_end == std::string_view::npos ? std::string_view() : head.substr(first_line_end + 2);
  while (!rest.empty()) {
    auto eol = rest.find("\r\n");
    std::string_view line = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 2);
    auto colon = line.find(':');
    if (colon == std::string_view::npos) return R(make_error("malformed header in websocket handshake"));
    std::string name = lower(trim(line.substr(0, colon)));
    std::string_view value = trim(line.substr(colon + 1));
    if (name == "upgrade") upgrade = lower(value) == "websocket";
    if (name == "connection") connection = lower(value).find("upgrade") != std::string::npos;
    if (name == "sec-websocket-accept") accepted = value == expected;
  }
  if (!upgrade || !connection) return R(make_error("websocket handshake lacks Upgrade/Connection headers"));
  if (!accepted) return R(make_error("websocket handshake has a wrong Sec-WebSocket-Accept"));
  return R(end + 4);
}

std::string encode_frame(Opcode opcode, std::string_view payload, const std::uint8_t mask[4], bool fin) {
  std::string out;
  out.reserve(payload.size() + 14);
  out.push_back(static_cast<char>((fin ? 0x80 : 0x00) | opcode));
  const std::uint64_t n = payload.size();
  if (n < 126) {
    out.push_back(static_cast<char>(0x80 | n));
  } else if (n <= 0xffff) {
    out.push_back(static_cast<char>(0x80 | 126));
    out.push_back(static_cast<char>(n >> 8));
    out.push_back(static_cast<char>(n & 0xff));
  } else {
    out.push_back(static_cast<char>(0x80 | 127));
    for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>((n >> (i * 8)) & 0xff));
  }
  for (int i = 0; i < 4; ++i) out.push_back(static_cast<char>(mask[i]));
  for (std::size_t i = 0; i < payload.size(); ++i) out.push_back(static_cast<char>(payload[i] ^ mask[i % 4]));
  return out;
}

std::optional<Result<Message>> FrameReader::next() {
  using R = Result<Message>;
  auto die = [this](std::string why) {
    dead_ = true;
    buffer_.clear();
    fragments_.clear();
    return std::optional<R>(make_error(std::move(why)));
  };
  while (!dead_) {
    if (buffer_.size() < 2) return std::nullopt;
    const auto* b = reinterpret_cast<const unsigned char*>(buffer_.data());
    bool fin = b[0] & 0x80;
    if (b[0] & 0x70) return die("websocket frame uses reserved bits");
    auto opcode = static_cast<Opcode>(b[0] & 0x0f);
    if (b[1] & 0x80) return die("websocket server sent a masked frame");
    std::uint64_t len = b[1] & 0x7f;
    std::size_t header = 2;
    if (len == 126) {
      if (buffer_.size() < 4) return std::nullopt;
      len = (std::uint64_t(b[2]) << 8) | b[3];
      header = 4;
    } else if (len == 127) {
      if (buffer_.size() < 10) return std::nullopt;
      len = 0;
      for (int i = 0; i < 8; ++i) len = (len << 8) | b[2 + i];
      header = 10;
    }
    bool control = opcode & 0x8;
    if (control) {
      if (opcode != kClose && opcode != kPing && opcode != kPong) return die("websocket frame has a reserved opcode");
      if (!fin || len > 125) return die("websocket control frame is fragmented or too long");
    } else if (opcode != kContinuation && opcode != kText && opcode != kBinary) {
      return die("websocket frame has a reserved opcode");
    }
    if (len > max_ || fragments_.size() + len > max_)
      return die("websocket message larger than " + std::to_string(max_) + " bytes");
    if (buffer_.size() < header + len) return std::nullopt;
    std::string payload = buffer_.substr(header, static_cast<std::size_t>(len));
    buffer_.erase(0, header + static_cast<std::size_t>(len));
    if (control) return R(Message{opcode, std::move(payload)});
    if (opcode == kContinuation) {
      if (!fragmented_opcode_) return die("websocket continuation frame without a start");
    } else {
      if (fragmented_opcode_) return die("websocket data frame inside a fragmented message");
      fragmented_opcode_ = opcode;
    }
    fragments_ += payload;
    if (!fin) continue;
    Message m{*fragmented_opcode_, std::move(fragments_)};
    fragments_.clear();
    fragmented_opcode_.reset();
    return R(std::move(m));
  }
  return std::optional<R>(make_error("websocket stream already failed"));
}

}  // namespace websocket

namespace {

void random_bytes(std::uint8_t* out, std::size_t n) {
  while (n > 0) {
    ssize_t got = ::getrandom(out, n, 0);
    if (got <= 0) {
      if (got < 0 && errno == EINTR) continue;
      // Masking protects proxies, not secrets: on loopback a weak mask is harmless.
      for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::uint8_t>(i * 131 + 7);
      return;
    }
    out += got;
    n -= static_cast<std::size_t>(got);
  }
}

}  // namespace

Result<CdpWebSocket> CdpWebSocket::connect(std::uint16_t port, std::string path) {
  CdpWebSocket ws;
  ws.port_ = port;
  ws.path_ = std::move(path);
  std::uint8_t nonce[16];
  random_bytes(nonce, sizeof(nonce));
  ws.key_ = websocket::base64(std::string_view(reinterpret_cast<const char*>(nonce), sizeof(nonce)));
  ws.socket_.reset(::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
  if (!ws.socket_.valid()) return make_error(std::string("socket: ") + std::strerror(errno));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(ws.socket_.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 && errno != EINPROGRESS)
    return make_error(std::string("connect to Chromium's debugging port: ") + std::strerror(errno));
  return ws;
}

std::uint32_t CdpWebSocket::wanted_events() const {
  switch (state_) {
    case State::kConnecting: return EPOLLOUT;
    case State::kHandshake: return EPOLLIN | (outbox_.empty() ? 0u : EPOLLOUT);
    case State::kOpen: return EPOLLIN | (outbox_.empty() ? 0u : EPOLLOUT);
    case State::kClosed: return 0;
  }
  return 0;
}

void CdpWebSocket::queue_frame(websocket::Opcode opcode, std::string_view payload) {
  std::uint8_t mask[4];
  random_bytes(mask, sizeof(mask));
  outbox_ += websocket::encode_frame(opcode, payload, mask);
}

void CdpWebSocket::send_text(std::string_view payload) {
  if (state_ == State::kClosed) return;
  if (state_ != State::kOpen) {
    waiting_.emplace_back(payload);
    return;
  }
  queue_frame(websocket::kText, payload);
}

Status CdpWebSocket::flush() {
  while (!outbox_.empty()) {
    ssize_t n = ::send(socket_.get(), outbox_.data(), outbox_.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    if (n < 0) return make_error(std::string("write to Chromium: ") + std::strerror(errno));
    outbox_.erase(0, static_cast<std::size_t>(n));
  }
  return ok_status();
}

Result<std::vector<std::string>> CdpWebSocket::on_events(std::uint32_t events) {
  std::vector<std::string> messages;
  auto fail = [this](std::string why) -> Result<std::vector<std::string>> {
    state_ = State::kClosed;
    return make_error(std::move(why));
  };
  if (state_ == State::kClosed) return fail("websocket is closed");
  if (state_ == State::kConnecting) {
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return messages;
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(socket_.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) return fail(std::string("connect to Chromium's debugging port: ") + std::strerror(err));
    outbox_ = websocket::handshake_request("127.0.0.1:" + std::to_string(port_), path_, key_);
    state_ = State::kHandshake;
  }
  if (auto st = flush(); !st) return fail(st.error().message);
  if (!(events & (EPOLLIN | EPOLLHUP | EPOLLERR))) return messages;
  char buf[16 * 1024];
  for (;;) {
    ssize_t n = ::recv(socket_.get(), buf, sizeof(buf), 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN) break;
    if (n < 0) return fail(std::string("read from Chromium: ") + std::strerror(errno));
    if (n == 0) return fail("Chromium closed the DevTools connection");
    std::string_view chunk(buf, static_cast<std::size_t>(n));
    if (state_ == State::kHandshake) {
      inbound_.append(chunk);
      auto outcome = websocket::parse_handshake_response(inbound_, key_);
      if (!outcome) continue;
      if (!outcome->ok()) return fail(outcome->error().message);
      reader_.feed(std::string_view(inbound_).substr(outcome->value()));
      inbound_.clear();
      state_ = State::kOpen;
      for (auto& m : waiting_) queue_frame(websocket::kText, m);
      waiting_.clear();
    } else {
      reader_.feed(chunk);
    }
    while (state_ == State::kOpen) {
      auto item = reader_.next();
      if (!item) break;
      if (!item->ok()) return fail(item->error().message);
      auto& m = item->value();
      if (m.opcode == websocket::kText) messages.push_back(std::move(m.payload));
      else if (m.opcode == websocket::kPing) queue_frame(websocket::kPong, m.payload);
      else if (m.opcode == websocket::kClose) {
        queue_frame(websocket::kClose, m.payload.substr(0, 2));
        (void)flush();
        return fail("Chromium closed the DevTools websocket");
      }
      // Binary and pong frames carry nothing CDP needs.
    }
  }
  if (auto st = flush(); !st) return fail(st.error().message);
  return messages;
}

}  // namespace kindling::agent
