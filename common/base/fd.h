// Fd: an open file descriptor, closed when it goes out of scope.
#ifndef MIMIC_COMMON_BASE_FD_H_
#define MIMIC_COMMON_BASE_FD_H_

#include <unistd.h>

#include <utility>

namespace mimic::common {

class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  Fd(Fd&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Fd& operator=(Fd&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  ~Fd() { Reset(); }
  int get() const { return fd_; }
  // Closes the descriptor held (if any) and holds `fd`.
  void Reset(int fd = -1) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = fd;
  }

 private:
  int fd_;
};

}  // namespace mimic::common

#endif  // MIMIC_COMMON_BASE_FD_H_
