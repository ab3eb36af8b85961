#include "image/image_build.hpp"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iomanip>

#include "common/secrets.hpp"
#include "common/unique_fd.hpp"
#include "image/agent_binary.hpp"
#include "image/file_digest.hpp"
#include "image/guest_boot.hpp"
#include "image/kernel_cmdline.hpp"
#include "image/image_recipe.hpp"
#include "image/tool_run.hpp"

namespace kindling::image {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr int kSteps = 9;

class Progress {
 public:
  explicit Progress(std::ostream& out) : out_(out) {}
  void begin(int n, const std::string& what) {
    name_ = what;
    started_ = Clock::now();
    out_ << "[" << n << "/" << kSteps << "] " << what << " ..." << std::flush;
  }
  double end(const std::string& note = {}) {
    double s = std::chrono::duration<double>(Clock::now() - started_).count();
    out_ << " " << std::fixed << std::setprecision(1) << s << " s" << (note.empty() ? "" : " (" + note + ")") << "\n"
         << std::flush;
    seconds_[name_] = s;
    return s;
  }
  const std::map<std::string, double>& seconds() const { return seconds_; }

 private:
  std::ostream& out_;
  std::string name_;
  Clock::time_point started_;
  std::map<std::string, double> seconds_;
};

std::string mb(std::uint64_t bytes) {
  std::ostringstream s;
  s << std::fixed << std::setprecision(1) << static_cast<double>(bytes) / 1e6 << " MB";
  return s.str();
}

Status write_file_synced(const std::string& path, const std::string& text, mode_t mode) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode));
  if (!fd.valid()) return make_error("cannot create " + path + ": " + std::strerror(errno));
  if (::write(fd.get(), text.data(), text.size()) != static_cast<ssize_t>(text.size()) || ::fsync(fd.get()) != 0)
    return make_error("cannot write " + path + ": " + std::strerror(errno));
  return ok_status();
}

void sync_dir(const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (fd.valid()) ::fsync(fd.get());
}

Status copy_file(const std::string& from, const std::string& to, mode_t mode) {
  std::error_code ec;
  fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
  if (ec) return make_error("cannot copy " + from + " to " + to + ": " + ec.message());
  if (::chmod(to.c_str(), mode) != 0) return make_error("cannot chmod " + to + ": " + std::strerror(errno));
  return ok_status();
}

// Every mtime at the recipe's epoch: files written by maintainer scripts
// would otherwise carry the build's wall-clock time. fc-cache runs after it,
// so the font caches record the clamped directory times and stay valid.
std::int64_t g_epoch = 0;
int clamp_one(const char* path, const struct stat*, int, struct FTW*) {
  struct timespec times[2] = {{g_epoch, 0}, {g_epoch, 0}};
  ::utimensat(AT_FDCWD, path, times, AT_SYMLINK_NOFOLLOW);
  return 0;
}
void clamp_mtimes(const std::string& dir, std::int64_t epoch) {
  g_epoch = epoch;
  ::nftw(dir.c_str(), clamp_one, 64, FTW_PHYS | FTW_MOUNT);
}

// .build-<key16>-<pid> directories of builds that are no longer running.
void remove_stale_builds(const std::string& store, std::ostream& progress) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(store, ec)) {
    std::string name = entry.path().filename().string();
    if (name.rfind(".build-", 0) != 0) continue;
    pid_t pid = static_cast<pid_t>(std::atol(name.substr(name.rfind('-') + 1).c_str()));
    if (pid > 0 && (::kill(pid, 0) == 0 || errno == EPERM) && pid != ::getpid()) continue;
    progress << "removing the remains of an interrupted build: " << entry.path().string() << "\n";
    auto st = remove_tree_one_fs(entry.path().string());
    if (!st) progress << "warning: " << st.error().message << "\n";
  }
}

Status point_current_at(const std::string& store, const std::string& name) {
  std::string tmp = store + "/.current.tmp";
  ::unlink(tmp.c_str());
  if (::symlink(name.c_str(), tmp.c_str()) != 0) return make_error("cannot create " + tmp + ": " + std::strerror(errno));
  if (::rename(tmp.c_str(), (store + "/current").c_str()) != 0)
    return make_error("cannot update " + store + "/current: " + std::strerror(errno));
  sync_dir(store);
  return ok_status();
}

}  // namespace

std::string default_store_dir() {
  const char* env = std::getenv("KINDLING_IMAGE_DIR");
  return env && *env ? env : "/var/lib/kindling/images";
}

std::string resolve_image_dir(const std::string& dir) {
  std::error_code ec;
  if (fs::exists(dir + "/" + kManifestFileName, ec)) return dir;
  fs::path current = fs::path(dir) / "current";
  if (fs::is_symlink(current, ec)) return (fs::path(dir) / fs::read_symlink(current, ec)).string();
  return dir;
}

Result<BuildOutcome> build_image(const BuildOptions& options, std::ostream& out) {
  const auto started = Clock::now();
  Progress progress(out);
  const ImageRecipe recipe = default_recipe();
  const std::string store = options.store_dir;
  std::error_code ec;
  fs::create_directories(store, ec);
  if (ec) return make_error("cannot create image directory " + store + ": " + ec.message());

  // One build per store at a time; a second waits rather than racing.
  UniqueFd lock(::open((store + "/.lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!lock.valid() || ::flock(lock.get(), LOCK_EX) != 0)
    return make_error("cannot lock " + store + "/.lock: " + std::strerror(errno));

  progress.begin(1, "inputs (recipe, apt candidates, agent, init)");
  KINDLING_TRY(agent_ok, check_static_elf(options.agent_path));
  (void)agent_ok;
  KINDLING_TRY(init_ok, check_static_elf(options.init_path));
  (void)init_ok;
  KINDLING_TRY(agent_sha, sha256_file(options.agent_path));
  KINDLING_TRY(init_sha, sha256_file(options.init_path));
  KINDLING_TRY(candidates, candidate_versions(recipe));
  const std::string text = recipe_text(recipe);
  const std::string key = cache_key(text, candidates, agent_sha, init_sha);
  const std::string name = key.substr(0, 16);
  const std::string final_dir = store + "/" + name;
  progress.end("key " + name);

  if (!options.force && fs::exists(final_dir, ec)) {
    auto cached = verify_image_dir(final_dir);
    if (cached && cached->key == key) {
      KINDLING_TRY(pointed, point_current_at(store, name));
      (void)pointed;
      BuildOutcome o{final_dir, std::move(cached).value(), true,
                     std::chrono::duration<double>(Clock::now() - started).count()};
      out << "cache hit: " << final_dir << " (" << mb(o.manifest.image_bytes) << ", Chromium "
          << o.manifest.chromium_version << ")\n";
      return o;
    }
    out << "cached " << final_dir << " does not verify (" << (cached ? "key differs" : cached.error().message)
        << "): rebuilding\n";
  }
  remove_stale_builds(store, out);

  const std::string work = store + "/.build-" + name + "-" + std::to_string(::getpid());
  const std::string rootfs = work + "/rootfs";
  const std::string log = work + "/build.log";
  if (::mkdir(work.c_str(), 0755) != 0) return make_error("cannot create " + work + ": " + std::strerror(errno));
  // Whatever fails below leaves `work` for the next build to remove; it is
  // never mistaken for an image (its name starts with a dot, and it has no
  // manifest until everything else is in place).
  out << "building in " << work << " (tool output: " << log << ")\n";

  ImageManifest m;
  m.key = key;
  m.suite = recipe.suite;
  m.image_file = kImageFileName;
  m.compression = "zstd-" + std::to_string(recipe.zstd_level);
  m.agent_path = kAgentPathInImage;
  m.agent_sha256 = agent_sha;
  m.recipe_sha256 = sha256_hex(text);
  m.candidates = candidates;
  m.source_date_epoch = recipe.source_date_epoch;
  m.built_by = options.built_by;
  const std::string epoch_env = "SOURCE_DATE_EPOCH=" + std::to_string(recipe.source_date_epoch);

  progress.begin(2, "mmdebstrap " + recipe.suite + " (" + std::to_string(recipe.packages.size()) + " packages + deps)");
  {
    ToolRun run{mmdebstrap_argv(recipe, rootfs), {epoch_env}, log, false, true};
    KINDLING_TRY(done, run_tool(run));
    (void)done;
  }
  progress.end();

  progress.begin(3, "add agent, /etc/hosts, clamp mtimes, font cache");
  fs::create_directories(rootfs + "/kindling", ec);
  KINDLING_TRY(copied, copy_file(options.agent_path, rootfs + kAgentPathInImage, 0755));
  (void)copied;
  KINDLING_TRY(hosts, write_file_synced(rootfs + "/etc/hosts", "127.0.0.1\tlocalhost\n::1\tlocalhost\n", 0644));
  (void)hosts;
  // Machine-specific files a build must not bake in.
  for (const char* f : {"/etc/machine-id", "/var/lib/dbus/machine-id", "/etc/hostname", "/etc/resolv.conf"})
    ::unlink((rootfs + f).c_str());
  // Empty, not absent: systemd-style readers treat an empty file as "no id
  // yet" and nothing in the image needs a real one.
  KINDLING_TRY(machine_id, write_file_synced(rootfs + "/etc/machine-id", "", 0444));
  (void)machine_id;
  clamp_mtimes(rootfs, recipe.source_date_epoch);
  {
    ToolRun run{{"chroot", rootfs, "/usr/bin/fc-cache", "--system-only", "--really-force"}, {epoch_env}, log};
    KINDLING_TRY(done, run_tool(run));
    (void)done;
  }
  progress.end();

  progress.begin(4, "package list");
  {
    ToolRun run{{"dpkg-query", "--admindir=" + rootfs + "/var/lib/dpkg", "-W",
                 "-f=${Package}\t${Version}\t${Installed-Size}\n"}, {}, log, true};
    KINDLING_TRY(listed, run_tool(run));
    m.packages = parse_package_list(listed);
  }
  for (auto& p : m.packages)
    if (p.name == "chromium") m.chromium_version = p.version;
  if (m.chromium_version.empty()) return make_error("chromium is not installed in the image root (see " + log + ")");
  m.rootfs_bytes = tree_bytes(rootfs);
  progress.end(std::to_string(m.packages.size()) + " packages, Chromium " + m.chromium_version + ", root " +
               mb(m.rootfs_bytes));

  // Before the long compression: a kernel problem shows within seconds.
  progress.begin(5, "microVM kernel (" + recipe.kernel_package + ", extracted) and initramfs");
  {
    GuestBootInputs bi{recipe.kernel_package, work, work, options.init_path, rootfs + kAgentPathInImage, "squashfs",
                       recipe.source_date_epoch, log};
    KINDLING_TRY(boot, build_guest_boot(bi));
    m.boot.kernel_package = boot.kernel_package;
    m.boot.kernel_version = boot.kernel_version;
    m.boot.kernel_file = kKernelFileName;
    m.boot.initramfs_file = kInitramfsFileName;
    for (const auto& path : boot.modules) m.boot.modules.push_back(path.substr(path.rfind('/') + 1));
    m.boot.builtin_modules = boot.builtin;
    KINDLING_TRY(cmdline, guest_kernel_cmdline(GuestKernelArgs{}));
    m.boot.cmdline = cmdline;
    KINDLING_TRY(k_removed, remove_tree_one_fs(work + "/kernel-tree"));
    (void)k_removed;
    KINDLING_TRY(d_removed, remove_tree_one_fs(work + "/kernel-deb"));
    (void)d_removed;
    progress.end(boot.kernel_version + ", " + std::to_string(boot.modules.size()) + " modules");
  }

  const std::string image_tmp = work + "/" + kImageFileName;
  progress.begin(6, "mksquashfs (zstd " + std::to_string(recipe.zstd_level) + ")");
  {
    // No SOURCE_DATE_EPOCH here: mksquashfs refuses it next to -all-time.
    ToolRun run{mksquashfs_argv(recipe, rootfs, image_tmp), {}, log};
    KINDLING_TRY(done, run_tool(run));
    (void)done;
  }
  struct stat st{};
  if (::stat(image_tmp.c_str(), &st) != 0) return make_error("mksquashfs left no image at " + image_tmp);
  m.image_bytes = static_cast<std::uint64_t>(st.st_size);
  progress.end(mb(m.image_bytes));
  if (m.image_bytes > kMaxImageBytes)
    out << "warning: the image is " << mb(m.image_bytes) << ", over the budget of " << mb(kMaxImageBytes) << "\n";

  progress.begin(7, "checksums");
  KINDLING_TRY(kernel_sha, sha256_file(work + "/" + kKernelFileName));
  m.boot.kernel_sha256 = kernel_sha;
  m.boot.kernel_bytes = fs::file_size(work + "/" + kKernelFileName, ec);
  KINDLING_TRY(initramfs_sha, sha256_file(work + "/" + kInitramfsFileName));
  m.boot.initramfs_sha256 = initramfs_sha;
  m.boot.initramfs_bytes = fs::file_size(work + "/" + kInitramfsFileName, ec);
  KINDLING_TRY(image_sha, sha256_file(image_tmp));
  m.image_sha256 = image_sha;
  struct stat agent_st{};
  ::stat((rootfs + kAgentPathInImage).c_str(), &agent_st);
  m.agent_bytes = static_cast<std::uint64_t>(agent_st.st_size);
  KINDLING_TRY(removed, remove_tree_one_fs(rootfs));
  (void)removed;
  progress.end();

  progress.begin(8, "manifest (written last)");
  m.step_seconds = progress.seconds();
  KINDLING_TRY(written, write_file_synced(work + "/" + kManifestFileName, manifest_text(m), 0644));
  (void)written;
  sync_dir(work);
  progress.end();

  progress.begin(9, "publish " + final_dir);
  if (fs::exists(final_dir, ec)) {
    KINDLING_TRY(old_removed, remove_tree_one_fs(final_dir));
    (void)old_removed;
  }
  if (::rename(work.c_str(), final_dir.c_str()) != 0)
    return make_error("cannot rename " + work + " to " + final_dir + ": " + std::strerror(errno));
  sync_dir(store);
  KINDLING_TRY(pointed, point_current_at(store, name));
  (void)pointed;
  progress.end();

  BuildOutcome o{final_dir, std::move(m), false, std::chrono::duration<double>(Clock::now() - started).count()};
  return o;
}

}  // namespace kindling::image
