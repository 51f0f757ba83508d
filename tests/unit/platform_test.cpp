// Unit tests for the platform layer: reserve costs nothing, commit gives zeroed memory, purge
// gives memory back to the OS.
#include <gtest/gtest.h>

#include <cstring>

#include "platform/os.hpp"
#include "test_support.hpp"

using namespace memdesc;

TEST(Platform, ReserveOneTebibyteCostsNoRss) {
  std::size_t before = platform::rss_bytes();
  auto r = platform::reserve(test::kHugeArena, std::size_t{4} << 20);
  ASSERT_TRUE(r.ok()) << describe(r.error());
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(r.value()) % (4 << 20), 0u);
  ASSERT_FALSE(platform::commit(r.value(), test::kHugeArena));
  EXPECT_LT(platform::rss_bytes(), before + (std::size_t{16} << 20));
  platform::release(r.value(), test::kHugeArena);
}

TEST(Platform, CommitTouchPurge) {
  const std::size_t n = std::size_t{8} << 20;
  auto r = platform::reserve_committed(n, 4096);
  ASSERT_TRUE(r.ok());
  auto* p = static_cast<unsigned char*>(r.value());
  EXPECT_EQ(platform::resident_bytes(p, n), 0u);
  std::memset(p, 0xAB, n);
  EXPECT_EQ(platform::resident_bytes(p, n), n);
  ASSERT_FALSE(platform::purge(p, n));
  EXPECT_EQ(platform::resident_bytes(p, n), 0u);
  EXPECT_EQ(p[0], 0);
  EXPECT_EQ(p[n - 1], 0);
  platform::release(p, n);
}

TEST(Platform, ErrorsCarryErrnoText) {
  auto r = platform::reserve(0, 4096);
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.error().code, Errc::invalid_config);
  // An absurd reservation fails in the OS and says why.
  auto big = platform::reserve(std::size_t{1} << 62, 4096);
  ASSERT_FALSE(big.ok());
  EXPECT_EQ(big.error().code, Errc::os_error);
  EXPECT_NE(big.error().os_errno, 0);
  EXPECT_NE(describe(big.error()).find("mmap"), std::string::npos);
}
