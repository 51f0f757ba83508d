// memdesc/word.hpp — the memdesc word: 8 bytes that describe one 4 KiB page.
//
// Layer: core (this is core's public face). docs/MEMDESC.md has the bit diagrams and the
// encode/decode tables; this header is the single source of truth for the values.
//
//   bits 0-3   type (MemdescType)                                        [MEMDESC-TAG]
//   pointer types:  bits 4-46  descriptor address bits 4-46 (descriptors are 16-byte aligned
//                              and live below 2^47)                       [MEMDESC-PTR]
//                   bits 47-50 order of the block the page belongs to (0..15)
//                   bits 51-63 aux: 13 bits private to the owning type (e.g. a size class)
//   Misc:           bits 4-10 subtype, bit 11 mappable, bits 12-17 order, rest zero
//   Buddy:          bit 4 dirty (the block may hold resident memory); on the first page of a
//                   free block below the largest order, bit 5 head and bits 6-9 its order;
//                   rest zero. The all-zero word is a clean free page, so a fresh (untouched,
//                   zero) page-word array already says "everything is free and clean" [BUDDY-WORD]
//
// Every page of an allocation holds the same word: there are no head or tail pages.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace memdesc {

// One table generates the enum, the names and the pointer/inline split.
// X(name, tag value, carries a descriptor pointer, description)
#define MEMDESC_TYPE_TABLE(X)                                               \
  X(Buddy, 0, false, "free page (buddy allocator)")                         \
  X(Misc, 1, false, "inline: reserved, guard, kmalloc_large, plain pages")  \
  X(File, 2, true, "file folio")                                            \
  X(Anon, 3, true, "anonymous folio")                                       \
  X(Ksm, 4, true, "KSM page (reserved)")                                    \
  X(Slab, 5, true, "slab")                                                  \
  X(Movable, 6, true, "movable non-folio memory")                           \
  X(PageTable, 7, true, "page table (ptdesc)")                              \
  X(NetPool, 8, true, "network buffer pool (reserved)")                     \
  X(HwPoison, 9, true, "hardware-poisoned page (reserved)")                 \
  X(PerCpu, 10, true, "per-CPU chunk (reserved)")                           \
  X(ZPDesc, 11, true, "zsmalloc page (zspage descriptor)")                  \
  X(Frag, 12, true, "page_frag block (bump descriptor)")

enum class MemdescType : std::uint8_t {
#define MEMDESC_X(name, value, ptr, desc) name = value,
  MEMDESC_TYPE_TABLE(MEMDESC_X)
#undef MEMDESC_X
};

inline constexpr unsigned kMemdescTypeCount = 16;  // 4 bits; values 13-15 unassigned

constexpr bool type_is_assigned(unsigned t) {
  switch (t) {
#define MEMDESC_X(name, value, ptr, desc) case value: return true;
    MEMDESC_TYPE_TABLE(MEMDESC_X)
#undef MEMDESC_X
  }
  return false;
}

constexpr bool type_has_pointer(MemdescType t) {
  switch (t) {
#define MEMDESC_X(name, value, ptr, desc) case MemdescType::name: return ptr;
    MEMDESC_TYPE_TABLE(MEMDESC_X)
#undef MEMDESC_X
  }
  return false;
}

constexpr const char* type_name(MemdescType t) {
  switch (t) {
#define MEMDESC_X(name, value, ptr, desc) case MemdescType::name: return #name;
    MEMDESC_TYPE_TABLE(MEMDESC_X)
#undef MEMDESC_X
  }
  return "Unassigned";
}

constexpr const char* type_description(MemdescType t) {
  switch (t) {
#define MEMDESC_X(name, value, ptr, desc) case MemdescType::name: return desc;
    MEMDESC_TYPE_TABLE(MEMDESC_X)
#undef MEMDESC_X
  }
  return "unassigned type";
}

// Misc subtypes: 0-8 as in the kernel's memdesc plan; 9 and 10 ours: a plain alloc_pages block,
// and a page between owners (a zsmalloc page being migrated: no free call but the migration's
// own accepts it).
#define MEMDESC_MISC_TABLE(X) \
  X(Reserved, 0)              \
  X(Zero, 1)                  \
  X(Unknown, 2)               \
  X(Vmalloc, 3)               \
  X(Guard, 4)                 \
  X(Offline, 5)               \
  X(KmallocLarge, 6)          \
  X(Exact, 7)                 \
  X(Brd, 8)                   \
  X(Pages, 9)                 \
  X(Migrating, 10)

enum class MiscSubtype : std::uint8_t {
#define MEMDESC_X(name, value) name = value,
  MEMDESC_MISC_TABLE(MEMDESC_X)
#undef MEMDESC_X
};
const char* misc_subtype_name(MiscSubtype s);  // "?" for an unassigned value

constexpr bool misc_subtype_is_assigned(unsigned s) {
  switch (s) {
#define MEMDESC_X(name, value) case value: return true;
    MEMDESC_MISC_TABLE(MEMDESC_X)
#undef MEMDESC_X
  }
  return false;
}

namespace detail {
// describe() was given a descriptor pointer, order or aux that the word cannot hold: fatal.
[[noreturn]] void bad_describe(MemdescType t, const void* desc, unsigned order, unsigned aux);
}  // namespace detail

class MemdescWord {
 public:
  static constexpr std::uint64_t kTypeMask = 0xF;
  static constexpr unsigned kPtrBits = 47;
  static constexpr std::uint64_t kPtrMask = ((std::uint64_t{1} << kPtrBits) - 1) & ~kTypeMask;
  static constexpr unsigned kOrderShift = 47, kOrderBits = 4;
  static constexpr unsigned kAuxShift = 51, kAuxBits = 13;
  static constexpr unsigned kMiscSubtypeShift = 4, kMiscSubtypeBits = 7;
  static constexpr unsigned kMiscMappableBit = 11;
  static constexpr unsigned kMiscOrderShift = 12, kMiscOrderBits = 6;
  static constexpr std::uint64_t kBuddyDirty = std::uint64_t{1} << 4;
  static constexpr std::uint64_t kBuddyHead = std::uint64_t{1} << 5;
  static constexpr unsigned kBuddyOrderShift = 6;
  static constexpr unsigned kMaxOrder = (1u << kOrderBits) - 1;  // largest order a word can hold
  static constexpr std::size_t kDescAlign = 16;

  constexpr MemdescWord() = default;  // Buddy, clean
  static constexpr MemdescWord from_raw(std::uint64_t v) { return MemdescWord(v); }

  static constexpr MemdescWord buddy(bool dirty) { return MemdescWord(dirty ? kBuddyDirty : 0); }
  // The first page of a free block of `order` in the buddy's pair bitmaps.
  static constexpr MemdescWord buddy_head(unsigned order, bool dirty) {
    return MemdescWord((dirty ? kBuddyDirty : 0) | kBuddyHead | (std::uint64_t{order} << kBuddyOrderShift));
  }
  static constexpr MemdescWord misc(MiscSubtype s, unsigned order, bool mappable = false) {
    return MemdescWord(static_cast<std::uint64_t>(MemdescType::Misc) |
                       (std::uint64_t{static_cast<std::uint8_t>(s)} << kMiscSubtypeShift) |
                       (std::uint64_t{mappable} << kMiscMappableBit) |
                       (std::uint64_t{order} << kMiscOrderShift));
  }
  // A word that points at a descriptor: `desc` 16-byte aligned and below 2^47, order <= 15 and
  // aux < 2^13. A value out of range would bleed into the neighbouring field and make another,
  // valid-looking word, so each is checked here (three compares; a violation is a fatal
  // report, MEMDESC-PTR): is_valid() cannot tell afterwards.
  static MemdescWord describe(MemdescType t, const void* desc, unsigned order, unsigned aux = 0) {
    const auto p = reinterpret_cast<std::uintptr_t>(desc);
    if ((p & ~kPtrMask) != 0 || order >= (1u << kOrderBits) || aux >= (1u << kAuxBits)) [[unlikely]]
      detail::bad_describe(t, desc, order, aux);
    return MemdescWord(static_cast<std::uint64_t>(t) | reinterpret_cast<std::uintptr_t>(desc) |
                       (std::uint64_t{order} << kOrderShift) | (std::uint64_t{aux} << kAuxShift));
  }

  constexpr std::uint64_t raw() const { return v_; }
  constexpr MemdescType type() const { return static_cast<MemdescType>(v_ & kTypeMask); }
  constexpr bool is(MemdescType t) const { return type() == t; }
  constexpr bool has_pointer() const { return type_has_pointer(type()); }

  // Pointer types only.
  void* desc() const { return reinterpret_cast<void*>(v_ & kPtrMask); }
  template <class T>
  T* desc_as() const { return static_cast<T*>(desc()); }
  constexpr unsigned aux() const { return static_cast<unsigned>(v_ >> kAuxShift); }

  // Misc only.
  constexpr MiscSubtype misc_subtype() const {
    return static_cast<MiscSubtype>((v_ >> kMiscSubtypeShift) & ((1u << kMiscSubtypeBits) - 1));
  }
  constexpr bool misc_mappable() const { return (v_ >> kMiscMappableBit) & 1; }

  // Buddy only.
  constexpr bool buddy_dirty() const { return v_ & kBuddyDirty; }
  constexpr bool buddy_head() const { return v_ & kBuddyHead; }
  constexpr unsigned buddy_order() const { return static_cast<unsigned>((v_ >> kBuddyOrderShift) & 15); }

  // Order of the block for Misc and pointer types; 0 for Buddy (a free block's order is in
  // its head word, buddy_order(), and in the buddy's bitmaps; its other pages carry none).
  constexpr unsigned order() const {
    if (type() == MemdescType::Misc) return static_cast<unsigned>((v_ >> kMiscOrderShift) & ((1u << kMiscOrderBits) - 1));
    if (type() == MemdescType::Buddy) return 0;
    return static_cast<unsigned>((v_ >> kOrderShift) & ((1u << kOrderBits) - 1));
  }

  // Every field in range and every reserved bit zero.                        [MEMDESC-VALID]
  constexpr bool is_valid() const {
    unsigned t = static_cast<unsigned>(v_ & kTypeMask);
    if (!type_is_assigned(t)) return false;
    if (type() == MemdescType::Buddy)  // order bits only with the head bit
      return (v_ >> (kBuddyOrderShift + 4)) == 0 && ((v_ & kBuddyHead) || buddy_order() == 0);
    if (type() == MemdescType::Misc) {
      unsigned sub = static_cast<unsigned>(misc_subtype());
      return misc_subtype_is_assigned(sub) && (v_ >> (kMiscOrderShift + kMiscOrderBits)) == 0;
    }
    return (v_ & kPtrMask) != 0;  // descriptor types need a descriptor
  }

  constexpr bool operator==(const MemdescWord&) const = default;

 private:
  constexpr explicit MemdescWord(std::uint64_t v) : v_(v) {}
  std::uint64_t v_ = 0;
};

static_assert(sizeof(MemdescWord) == 8, "MEMDESC-SIZE: one word per page");
static_assert(MemdescWord::kAuxShift + MemdescWord::kAuxBits == 64);
static_assert(MemdescWord::kOrderShift == MemdescWord::kPtrBits);
static_assert((1u << 4) == MemdescWord::kDescAlign, "MEMDESC-TAG: 4 tag bits need 16-byte descriptors");

// Human-readable form, e.g. "Misc(pages, order=2)", "Slab(desc=0x7f..., order=1, aux=3)",
// "Buddy(dirty)". format_word writes into a caller buffer and never allocates (reporters use it).
void format_word(MemdescWord w, char* buf, std::size_t n);
std::string to_string(MemdescWord w);

}  // namespace memdesc

// The tables have done their work: they do not leak into users' preprocessor namespace.
#undef MEMDESC_TYPE_TABLE
#undef MEMDESC_MISC_TABLE
