// zsmalloc/zs_api.cpp — memdesc::ZsPool, the public face of zsmalloc::Pool (memdesc/zsmalloc.hpp).
#include <memdesc/zsmalloc.hpp>

#include "base/base.hpp"
#include "zsmalloc/zs_pool.hpp"

namespace memdesc {

const char* zs_migrate_result_name(ZsMigrateResult r) {
  switch (r) {
    case ZsMigrateResult::migrated: return "migrated";
    case ZsMigrateResult::busy: return "busy";
    case ZsMigrateResult::not_isolated: return "not_isolated";
    case ZsMigrateResult::no_memory: return "no_memory";
  }
  return "?";
}

ZsPool::ZsPool(std::unique_ptr<zsmalloc::Pool> p, std::atomic<std::uint64_t>* live) : p_(std::move(p)), live_(live) {
  live_->fetch_add(1, std::memory_order_relaxed);
}

ZsPool::~ZsPool() {
  p_.reset();  // every object and page back to the arena, which is still alive
  live_->fetch_sub(1, std::memory_order_relaxed);
}

Result<ZsHandle> ZsPool::malloc(std::size_t size, Gfp gfp) { return p_->malloc(size, gfp); }
void ZsPool::free(ZsHandle h) { p_->free(h); }
const void* ZsPool::read_begin(ZsHandle h, void* local_copy, std::size_t len) { return p_->read_begin(h, local_copy, len); }
void ZsPool::read_end(ZsHandle h, const void* mem) { p_->read_end(h, mem); }
void ZsPool::write(ZsHandle h, const void* src, std::size_t len) { p_->write(h, src, len); }
std::size_t ZsPool::object_capacity(ZsHandle h) { return p_->object_capacity(h); }
std::uint64_t ZsPool::can_compact() const { return p_->can_compact(); }
std::uint64_t ZsPool::compact() { return p_->compact(); }

namespace {
std::uint64_t page_pfn(const zsmalloc::Pool& p, const void* page, const char* op) {
  core::check_in_arena(p.memmap(), op, page);  // a foreign pointer: the one report for it
  return p.memmap().pfn(page);
}
}  // namespace

bool ZsPool::isolate_page(const void* page) { return p_->isolate_page(page_pfn(*p_, page, "zs_isolate_page")); }
ZsMigrateResult ZsPool::migrate_page(const void* page) { return p_->migrate_page(page_pfn(*p_, page, "zs_migrate_page")); }
void ZsPool::putback_page(const void* page) { p_->putback_page(page_pfn(*p_, page, "zs_putback_page")); }

std::size_t ZsPool::huge_class_size() const { return p_->table().huge_class_size; }
const ZsClassTable& ZsPool::class_table() const { return p_->table(); }
std::uint64_t ZsPool::total_pages() const { return p_->total_pages(); }
ZsPoolStats ZsPool::stats() const { return p_->stats(); }
std::vector<ZsClassStats> ZsPool::class_stats() const { return p_->class_stats(); }
std::vector<ZsPageInfo> ZsPool::pages() const { return p_->pages(); }
void ZsPool::validate() const { p_->validate(); }

}  // namespace memdesc
