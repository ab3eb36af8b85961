#include "node/output_collector.hpp"

#include <unistd.h>

#include <chrono>
#include <thread>

#include <gtest/gtest.h>

using kindling::node::OutputCollector;
using kindling::node::OutputTail;

TEST(OutputTail, KeepsOnlyTheLastCapacityBytes) {
  OutputTail t(8);
  t.append("abc", 3);
  EXPECT_EQ(t.tail(100), "abc");
  t.append("defghijkl", 9);
  EXPECT_EQ(t.tail(100), "efghijkl");
  EXPECT_EQ(t.tail(3), "jkl");
  for (int i = 0; i < 100; ++i) t.append("0123", 4);
  EXPECT_EQ(t.tail(100), "01230123");
  EXPECT_EQ(t.total_bytes(), 12u + 400u);
}

TEST(OutputCollector, DrainsPipesAndForgetsThemAtEof) {
  auto collector = OutputCollector::create(1024);
  ASSERT_TRUE(collector);
  auto source = (*collector)->open_source();
  ASSERT_TRUE(source);
  EXPECT_EQ((*collector)->open_sources(), 1u);
  std::string big(100000, 'x');
  big += "last words\n";
  // More than a pipe buffer: the writer only finishes because the drain runs.
  std::size_t off = 0;
  while (off < big.size()) {
    ssize_t n = ::write(source->write_end.get(), big.data() + off, big.size() - off);
    ASSERT_GT(n, 0);
    off += static_cast<std::size_t>(n);
  }
  source->write_end.reset();
  for (int i = 0; i < 500 && (*collector)->open_sources() != 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_EQ((*collector)->open_sources(), 0u);
  EXPECT_EQ(source->tail->total_bytes(), big.size());
  EXPECT_EQ(source->tail->tail(11), "last words\n");
  EXPECT_EQ(source->tail->tail(1 << 20).size(), 1024u);
}
