// The API's Unix socket: accepts connections and turns bytes into requests
// (http_request_parser) and replies. It owns no VM state; the event loop in
// main.cpp polls its descriptors and hands each request to a callback.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "common/result.hpp"
#include "common/unique_fd.hpp"
#include "vmm/api/api_routes.hpp"

namespace kindling::vmm {

class ApiServer {
 public:
  using Handler = std::function<ApiResponse(const HttpRequest&)>;

  static Result<ApiServer> bind(const std::string& socket_path, Handler handler);
  ApiServer(ApiServer&&) = default;
  ApiServer& operator=(ApiServer&&) = default;
  ~ApiServer();

  int listen_fd() const { return listen_.get(); }
  std::vector<int> client_fds() const;
  void accept_clients();
  // Reads what is there and answers complete requests; closes on EOF/error.
  void service(int client_fd);

 private:
  ApiServer() = default;
  std::string path_;
  UniqueFd listen_;
  Handler handler_;
  std::map<int, std::pair<UniqueFd, std::string>> clients_;  // fd -> (socket, unparsed bytes)
};

}  // namespace kindling::vmm
