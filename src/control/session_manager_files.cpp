// SessionManager's file operations (a session's downloads and uploads),
// apart from the lifecycle code in session_manager.cpp.
#include <fmt/format.h>
#include <unistd.h>

#include "control/session_manager.hpp"

namespace kindling::control {

Result<std::vector<SessionFile>> SessionManager::list_files(const std::string& id) {
  KINDLING_TRY(s, find_ready(id));
  KINDLING_TRY(dir, s->browser_.machine->open_machine_dir(kDownloadsDir));
  return list_session_files(dir.get(), 1000, &s->file_digests_);
}

Result<UniqueFd> SessionManager::open_file(const std::string& id, const std::string& name, std::uint64_t& size) {
  KINDLING_TRY(valid, check_file_name(name));
  (void)valid;
  KINDLING_TRY(s, find_ready(id));
  KINDLING_TRY(dir, s->browser_.machine->open_machine_dir(kDownloadsDir));
  return open_session_file(dir.get(), name, size);
}

Result<SessionFile> SessionManager::upload_file(const std::string& id, const std::string& name,
                                                std::string_view data) {
  KINDLING_TRY(valid, check_file_name(name));
  (void)valid;
  KINDLING_TRY(s, find_ready(id));
  KINDLING_TRY(fd, s->browser_.machine->create_machine_file(kUploadsDir, name));
  auto file = write_session_file(fd.get(), name, data);
  if (!file) {
    // Leave no partial file behind for the page to pick up.
    if (auto dir = s->browser_.machine->open_machine_dir(kUploadsDir)) ::unlinkat(dir->get(), name.c_str(), 0);
    return file.error();
  }
  log_event(*s, "upload", fmt::format("{} ({} bytes) at {}/{}", name.substr(0, 128), file->size, kUploadsDir,
                                      name.substr(0, 128)));
  return *file;
}

}  // namespace kindling::control
