// Unit tests for the memdesc word: encoding, decoding, validity and printing.
#include <gtest/gtest.h>

#include <memdesc/word.hpp>

using namespace memdesc;

TEST(Word, ZeroIsCleanBuddy) {  // BUDDY-WORD: a fresh word array means "all free, clean"
  MemdescWord w;
  EXPECT_EQ(w.raw(), 0u);
  EXPECT_TRUE(w.is(MemdescType::Buddy));
  EXPECT_FALSE(w.buddy_dirty());
  EXPECT_TRUE(w.is_valid());
  EXPECT_EQ(to_string(w), "Buddy(clean)");
  EXPECT_EQ(to_string(MemdescWord::buddy(true)), "Buddy(dirty)");
  auto h = MemdescWord::buddy_head(7, true);
  EXPECT_TRUE(h.is(MemdescType::Buddy) && h.buddy_head() && h.buddy_dirty() && h.is_valid());
  EXPECT_EQ(h.buddy_order(), 7u);
  EXPECT_EQ(to_string(h), "Buddy(head, order=7, dirty)");
}

TEST(Word, MiscRoundTrip) {
  for (unsigned sub = 0; sub <= static_cast<unsigned>(MiscSubtype::Pages); ++sub)
    for (unsigned order = 0; order < 64; ++order)
      for (bool mappable : {false, true}) {
        auto w = MemdescWord::misc(static_cast<MiscSubtype>(sub), order, mappable);
        ASSERT_TRUE(w.is(MemdescType::Misc));
        ASSERT_EQ(static_cast<unsigned>(w.misc_subtype()), sub);
        ASSERT_EQ(w.order(), order);
        ASSERT_EQ(w.misc_mappable(), mappable);
        ASSERT_TRUE(w.is_valid());
      }
  EXPECT_EQ(to_string(MemdescWord::misc(MiscSubtype::KmallocLarge, 3)), "Misc(kmalloc_large, order=3)");
}

TEST(Word, DescriptorRoundTrip) {  // MEMDESC-PTR: pointer, order and aux all survive
  alignas(16) static char desc[64];
  for (MemdescType t : {MemdescType::File, MemdescType::Slab, MemdescType::ZPDesc, MemdescType::Frag,
                        MemdescType::PageTable, MemdescType::Movable}) {
    for (unsigned order : {0u, 1u, 10u, 15u})
      for (unsigned aux : {0u, 1u, 4095u, 8191u}) {
        auto w = MemdescWord::describe(t, desc + 16, order, aux);
        ASSERT_EQ(w.type(), t);
        ASSERT_EQ(w.desc(), desc + 16);
        ASSERT_EQ(w.order(), order);
        ASSERT_EQ(w.aux(), aux);
        ASSERT_TRUE(w.is_valid());
        ASSERT_TRUE(w.has_pointer());
      }
  }
}

TEST(Word, InvalidWords) {  // MEMDESC-VALID
  EXPECT_FALSE(MemdescWord::from_raw(13).is_valid());                 // unassigned type
  EXPECT_FALSE(MemdescWord::from_raw(15).is_valid());
  EXPECT_FALSE(MemdescWord::from_raw(1ull << 12).is_valid());          // Buddy with a stray bit
  EXPECT_FALSE(MemdescWord::from_raw(3ull << 6).is_valid());           // Buddy order without head
  EXPECT_FALSE(MemdescWord::from_raw(static_cast<uint64_t>(MemdescType::Slab)).is_valid());  // no descriptor
  EXPECT_FALSE(MemdescWord::from_raw(1 | (uint64_t{100} << 4)).is_valid());  // Misc subtype 100
  EXPECT_FALSE(MemdescWord::from_raw(1 | (uint64_t{11} << 4)).is_valid());   // the first unassigned subtype
  // Every assigned subtype is valid, the last one (a zsmalloc page in migration) included.
  for (MiscSubtype s : {MiscSubtype::Reserved, MiscSubtype::Pages, MiscSubtype::Migrating})
    EXPECT_TRUE(MemdescWord::misc(s, 3).is_valid()) << misc_subtype_name(s);
  EXPECT_FALSE(MemdescWord::from_raw(1 | (uint64_t{1} << 40)).is_valid());   // Misc high bits
  EXPECT_EQ(to_string(MemdescWord::from_raw(13)).rfind("invalid(", 0), 0u);
}

TEST(Word, TypeTableIsConsistent) {  // one table generates names, pointer flags and values
  EXPECT_STREQ(type_name(MemdescType::Buddy), "Buddy");
  EXPECT_STREQ(type_name(MemdescType::ZPDesc), "ZPDesc");
  EXPECT_FALSE(type_has_pointer(MemdescType::Buddy));
  EXPECT_FALSE(type_has_pointer(MemdescType::Misc));
  EXPECT_TRUE(type_has_pointer(MemdescType::File));
  unsigned assigned = 0;
  for (unsigned t = 0; t < kMemdescTypeCount; ++t) assigned += type_is_assigned(t);
  EXPECT_EQ(assigned, 13u);
}

// MEMDESC-PTR: a descriptor pointer, order or aux the word cannot hold is refused at once,
// never turned into another valid-looking word.
TEST(WordDeath, DescribeRefusesWhatTheWordCannotHold) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  alignas(16) static char desc[32];
  EXPECT_DEATH((void)MemdescWord::describe(MemdescType::Slab, desc + 2, 0, 0), "MEMDESC-PTR.*Slab word cannot hold");
  EXPECT_DEATH((void)MemdescWord::describe(MemdescType::Slab, reinterpret_cast<void*>(std::uintptr_t{1} << 47), 0, 0),
               "MEMDESC-PTR");
  EXPECT_DEATH((void)MemdescWord::describe(MemdescType::Anon, desc, 16, 0), "MEMDESC-PTR");
  EXPECT_DEATH((void)MemdescWord::describe(MemdescType::ZPDesc, desc, 0, 1u << 13), "MEMDESC-PTR");
  EXPECT_TRUE(MemdescWord::describe(MemdescType::Slab, desc, 15, (1u << 13) - 1).is_valid());
}
