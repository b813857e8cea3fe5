// resolv.conf: the text (pure), the atomic write, and a removal that only deletes our own file.
#include "tun/resolv_conf.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace wwan::tun {
namespace {

using ::testing::HasSubstr;

const std::vector<eth::Ipv4Address> kV4{{{10, 11, 12, 13}}, {{10, 11, 12, 14}}};
const std::vector<eth::Ipv6Address> kV6{{{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x53}}};

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

bool exists(const std::string& path) {
  struct stat st{};
  return ::lstat(path.c_str(), &st) == 0;
}

class ResolvConf : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/wwan-dp-resolv-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/resolv.conf";
  }
  void TearDown() override {
    for (const char* name : {"/resolv.conf", "/resolv.conf.tmp", "/elsewhere"}) ::unlink((dir_ + name).c_str());
    ::rmdir(dir_.c_str());
  }
  std::string dir_;
  std::string path_;
};

TEST(ResolvConfText, CommentThenIpv4ThenIpv6) {
  EXPECT_EQ(format_resolv_conf("wwan0", kV4, kV6),
            "# written by wwan-dp for wwan0\n"
            "nameserver 10.11.12.13\n"
            "nameserver 10.11.12.14\n"
            "nameserver 2001:db8::53\n");
  EXPECT_EQ(format_resolv_conf("wwan0", {}, {}), "# written by wwan-dp for wwan0\n");
  // A line break in the name cannot start a line of its own.
  EXPECT_EQ(format_resolv_conf("a\nnameserver 1.2.3.4", {}, {}), "# written by wwan-dp for a?nameserver 1.2.3.4\n");
}

TEST_F(ResolvConf, WritesAtomicallyReadableByAll) {
  std::string error;
  ASSERT_TRUE(write_resolv_conf(path_, "wwan0", kV4, kV6, error)) << error;
  EXPECT_EQ(read(path_), format_resolv_conf("wwan0", kV4, kV6));
  EXPECT_FALSE(exists(path_ + ".tmp"));
  struct stat st{};
  ASSERT_EQ(::stat(path_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  // Rewriting replaces the content whole.
  ASSERT_TRUE(write_resolv_conf(path_, "wwan0", std::span(kV4).first(1), {}, error)) << error;
  EXPECT_EQ(read(path_), "# written by wwan-dp for wwan0\nnameserver 10.11.12.13\n");
  EXPECT_FALSE(exists(path_ + ".tmp"));
}

TEST_F(ResolvConf, RemovesOnlyItsOwnFile) {
  std::string error;
  ASSERT_TRUE(write_resolv_conf(path_, "wwan0", kV4, kV6, error)) << error;
  ASSERT_TRUE(remove_resolv_conf(path_, error)) << error;
  EXPECT_FALSE(exists(path_));
  // Already gone: nothing to do.
  EXPECT_TRUE(remove_resolv_conf(path_, error)) << error;
  // Someone else's file (a DHCP client rewrote it meanwhile) stays.
  std::ofstream(path_) << "nameserver 192.0.2.1\n";
  EXPECT_FALSE(remove_resolv_conf(path_, error));
  EXPECT_THAT(error, HasSubstr("not written by wwan-dp"));
  EXPECT_EQ(error.find('\n'), std::string::npos);
  EXPECT_TRUE(exists(path_));
}

TEST_F(ResolvConf, FailuresSayWhichFile) {
  std::string error;
  EXPECT_FALSE(write_resolv_conf(dir_ + "/missing/resolv.conf", "wwan0", kV4, {}, error));
  EXPECT_THAT(error, HasSubstr(dir_ + "/missing/resolv.conf.tmp: No such file or directory"));
  EXPECT_EQ(error.find('\n'), std::string::npos);
}

TEST_F(ResolvConf, DoesNotFollowASymlinkAtTheTemporaryPath) {
  // wwan-dp runs as root: a link planted at PATH.tmp must not make it overwrite another file.
  const std::string victim = dir_ + "/elsewhere";
  std::ofstream(victim) << "precious\n";
  ASSERT_EQ(::symlink(victim.c_str(), (path_ + ".tmp").c_str()), 0);
  std::string error;
  EXPECT_FALSE(write_resolv_conf(path_, "wwan0", kV4, {}, error));
  EXPECT_THAT(error, HasSubstr("resolv.conf.tmp"));
  EXPECT_EQ(read(victim), "precious\n");
}

}  // namespace
}  // namespace wwan::tun
