// slab/slab.hpp — the slab layer's facade: slabs, object caches, per-thread magazines, and
// kmalloc, on memdescs. The layers above include this header only.
//
// Glossary: a *slab* is a naturally aligned block of 2^order pages cut into `objects` slots of
// `stride` bytes; its *descriptor* (struct Slab, 32 bytes) lives in the descriptor cache; every
// page of the slab holds the word Slab(descriptor, order, aux = cache id). A *magazine* is an
// array (stack) of free objects of one cache; each thread holds a *magazine pair* per cache it
// uses (the loaded one and the previous one); a cache's *depot* holds whole magazines that
// threads hand to each other (slab/magazine.hpp).
//
// Allocation code overview:
//   cache_alloc(c)   FAST: TLS slot → this thread's magazine for c.id → pop. The object is
//                    not touched. Cost: one TLS load, ~5 loads and 1 store, no lock, no atomic
//                    RMW, no call.
//   kmalloc(size)    FAST: the same with the class index as the id: no KmemCache load, and
//                    the kmalloc magazines sit inside the thread context (no chunk load).
//     alloc_slow:    attach the thread context; grow c's magazines if due (MAG-GROW) and remake
//                    this thread's if their capacity changed; swap in the previous magazine if
//                    it holds objects; else, in one hold of c.lock, take a full magazine from
//                    c's depot or refill half a magazine from partial slabs (freelist, then
//                    never-used slots); with no partial slab, leave the lock, make a slab (pages
//                    straight from the buddy, then descriptor, then page words: SLAB-BOOT), and
//                    retry.
//   cache_free(c,p)  FAST: p in the arena, word is Slab with aux == c.id, then free_object.
//   kfree(p)         FAST: the page word's tag decides: Slab → free_object(aux);
//                    Misc(kmalloc_large) → the block goes back to the buddy; else a report.
//   free_object(id)  reads only fast_[id]: p on a slot boundary of its slab (Lemire divisibility
//                    test; the slab mask comes from the cache, not the word), p not the object
//                    this thread freed last to c (cheap double-free check, MAG-TOP); push to
//                    this thread's magazine — from any thread, lock-free. The object itself is
//                    not touched: freeing a cold object costs no cache miss.
//     free_slow:     (MAG-GROW as alloc_slow) full magazine: swap in the previous one if it is
//                    empty; else, in one hold of c.lock, leave the full one whole in c's depot
//                    or flush half of it to their slabs (a full slab becomes partial; an empty
//                    one is kept up to kMinEmpty, else discarded after the lock is released,
//                    after a grace period for TYPESAFE_BY_RCU caches).
//
// Invariants (validate_slab() and validate_caches() check them, Arena::validate calls them;
// docs/INVARIANTS.md):
//   SLAB-COUNT   per slab: inuse + |freelist| + (objects - bump) == objects.
//   SLAB-LIST    a slab is on the partial list iff it has a free slot and inuse > reserved; on
//                the empty list iff inuse == reserved (KmemCache::reserved_slots: 1 for
//                descriptor-cache slabs, which hold their own descriptor as object 0:
//                SLAB-SELF); on no list iff full.
//   SLAB-WORD    every page of a live slab holds Slab(desc, order, cache id).
//   SLAB-BOOT    pages first, then the descriptor (from the descriptor cache, or object 0 of
//                the slab itself for the descriptor cache), then the words; any failure frees
//                what was taken.
//   SLAB-RCU     pages of a TYPESAFE_BY_RCU cache reach the buddy only after a grace period
//                that began after the slab left the cache.
//   MAG-TOP      a magazine never holds the same object twice in a row: a free of the
//                object on top of this thread's magazine (freed last, not reallocated since) is
//                a double free. Every magazine has a null sentinel below its first slot, so the
//                test needs no emptiness check. Slabs apply the same test to their freelist
//                head when objects come back (as SLUB's hardened freelist does).
//   MAG-OWNER    a thread's magazine pairs are touched by that thread only (kmem_cache_destroy
//                and thread exit excepted, after synchronising with it).
//   DEPOT-MAX    a cache's depot owns at most depot_max() magazines, full and empty
//                together: the magazines a burst of allocations empties wait there for the next
//                burst of frees instead of being freed and remade.
//   MAG-GROW     a cache's magazine capacity mag_cap only grows, up to mag_cap_max, and only when
//                a window of kGrowWindow slow-path lock takings found the lock held at least
//                kGrowWaits times (Bonwick's magazine resizing under depot contention); the
//                depot then holds magazines of mag_cap slots only, at most depot_max() of
//                them for that capacity. Magazines of big objects start small, so threads
//                that use such a cache now and then hoard little memory in it.
//
// Locking: KmemCache::lock (rank SlabCache) guards the cache's lists, counters and every
// mutable field of its slabs' descriptors. No page is allocated or freed under it. The
// registry lock (rank CacheRegistry) guards thread contexts as in page/page_cache.hpp.
#pragma once
#include "slab/kmalloc_classes.hpp"  // IWYU pragma: export
#include "slab/kmem_cache.hpp"       // IWYU pragma: export
#include "slab/magazine.hpp"         // IWYU pragma: export
#include "slab/slab_alloc.hpp"       // IWYU pragma: export
