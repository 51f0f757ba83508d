// zsmalloc/handle.hpp — the obj a handle slot holds: pfn << kObjIndexBits | index, the page
// where the object starts and its index in the zspage (ZS-HANDLE). Stored and loaded with
// release / acquire order: compaction and migration rewrite it under the pool write lock while
// lockless translations (under the pool read lock) load it.
#pragma once
#include <memdesc/zsmalloc.hpp>

#include <atomic>
#include <cstdint>

namespace memdesc::zsmalloc {

inline constexpr unsigned kObjIndexBits = 16;  // objects per zspage: at most 16 * 4096 / 32 = 2048

inline std::uint64_t make_obj(std::uint32_t pfn, std::uint32_t idx) { return (std::uint64_t{pfn} << kObjIndexBits) | idx; }
inline std::uint64_t obj_pfn(std::uint64_t obj) { return obj >> kObjIndexBits; }  // all 48 bits: a forged obj stays out of range
inline std::uint32_t obj_index(std::uint64_t obj) { return static_cast<std::uint32_t>(obj & ((1u << kObjIndexBits) - 1)); }
inline void record(ZsHandle h, std::uint64_t obj) {
  std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(h)).store(obj, std::memory_order_release);
}

inline std::uint64_t load_obj(ZsHandle h) {
  return std::atomic_ref<std::uint64_t>(*reinterpret_cast<std::uint64_t*>(h)).load(std::memory_order_acquire);
}

}  // namespace memdesc::zsmalloc
