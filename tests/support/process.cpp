#include "support/process.hpp"

#include <gtest/gtest.h>

#include <csignal>
#include <cstdlib>
#include <fcntl.h>
#include <fstream>
#include <sstream>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <thread>
#include <unistd.h>

extern char** environ;

namespace forq::test {

namespace fs = std::filesystem;

temp_dir::temp_dir() {
  std::string tmpl = "/tmp/forq-XXXXXX";
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

temp_dir::~temp_dir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void write_file(const fs::path& file, std::string_view content, bool executable) {
  std::ofstream(file, std::ios::binary | std::ios::trunc) << content;
  if (executable) fs::permissions(file, fs::perms::owner_all, fs::perm_options::add);
}

std::string read_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

child_process::child_process(std::vector<std::string> argv, std::vector<std::string> env) {
  std::vector<std::string> envs;
  for (char** e = environ; e && *e; ++e)
    if (!std::string_view(*e).starts_with("FORQ_")) envs.emplace_back(*e);
  for (auto& kv : env) {
    auto name = kv.substr(0, kv.find('=') + 1);
    std::erase_if(envs, [&](const std::string& x) { return x.starts_with(name); });
    if (kv.size() > name.size()) envs.push_back(kv);
  }
  std::vector<char*> cargv, cenv;
  for (auto& a : argv)
    cargv.push_back(a.data());
  cargv.push_back(nullptr);
  for (auto& e : envs)
    cenv.push_back(e.data());
  cenv.push_back(nullptr);
  auto out = (dir_ / "stdout").string(), err = (dir_ / "stderr").string();
  pid_t parent = ::getpid();

  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    sigset_t none;
    sigemptyset(&none);
    ::sigprocmask(SIG_SETMASK, &none, nullptr);
    int in = ::open("/dev/null", O_RDONLY);
    int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ::dup2(in, 0);
    ::dup2(o, 1);
    ::dup2(e, 2);
    ::close_range(3, ~0U, 0);
    ::execve(cargv[0], cargv.data(), cenv.data());
    ::_exit(127);
  }
}

child_process::~child_process() {
  if (running()) {
    ::kill(pid_, SIGKILL);
    wait_for(10s);
  }
}

void child_process::signal(int sig) const {
  ::kill(pid_, sig);
}

std::optional<int> child_process::wait_for(std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!status_) {
    int status = 0;
    if (::waitpid(pid_, &status, WNOHANG) == pid_) {
      status_ = status;
      break;
    }
    if (std::chrono::steady_clock::now() >= deadline) break;
    std::this_thread::sleep_for(5ms);
  }
  return status_;
}

bool child_process::running() {
  return !wait_for(0ms);
}

std::string child_process::out() const {
  return read_file(dir_ / "stdout");
}
std::string child_process::err() const {
  return read_file(dir_ / "stderr");
}

bool child_process::wait_for_err(std::string_view text, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < deadline) {
    if (err().find(text) != std::string::npos) return true;
    if (!running()) return err().find(text) != std::string::npos;
    std::this_thread::sleep_for(10ms);
  }
  return false;
}

run_result run(std::vector<std::string> argv, std::vector<std::string> env,
               std::chrono::milliseconds limit) {
  child_process p(std::move(argv), std::move(env));
  run_result r;
  auto status = p.wait_for(limit);
  if (!status) {
    ADD_FAILURE() << "command did not finish within " << limit.count() << " ms";
    p.signal(SIGKILL);
    p.wait_for(5s);
  } else if (WIFEXITED(*status)) {
    r.exit_code = WEXITSTATUS(*status);
  }
  r.out = p.out();
  r.err = p.err();
  return r;
}

bool process_gone(pid_t pid) {
  if (::kill(pid, 0) != 0 && errno == ESRCH) return true;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(stat, line);
  auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z';
}

bool wait_process_gone(pid_t pid, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!process_gone(pid)) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(10ms);
  }
  return true;
}

} // namespace forq::test
