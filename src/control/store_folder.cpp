#include "control/store_folder.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace kindling::control {

bool is_store_id(std::string_view id) {
  if (id.size() != 24) return false;
  for (char c : id)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

Status remove_store_entry(const std::string& dir, const std::string& id, std::string_view what) {
  const std::string gone = dir + "/" + std::string(kStoreDeletedPrefix) + id;
  if (std::rename((dir + "/" + id).c_str(), gone.c_str()) != 0)
    return make_error("cannot delete " + std::string(what) + " " + id + ": " + std::strerror(errno));
  std::error_code ec;
  std::filesystem::remove_all(gone, ec);
  return ok_status();
}

}  // namespace kindling::control
