# The layers of docs/ARCHITECTURE.md as build targets, so that the compiler enforces the DAG.
#
# memdesc_layer(NAME DEPS <layers below> SOURCES <files> [LIBS <third-party targets>]) makes the OBJECT library
# memdesc_<NAME>. Its only include root is build/layers/<NAME>/, a tree of symbolic links made at
# configure time: <L>/ -> src/<L>/ for NAME and every layer below it, and memdesc/<h> ->
# include/memdesc/<h> for each public header whose "Layer:" tag names one of those layers. A
# file that includes a header of a higher layer therefore fails to compile ("No such file"),
# whether it is an internal header ("slab/slab.hpp") or a public one (<memdesc/slab.hpp>).
# scripts/check-layers covers what the compiler cannot see (relative "../" paths, which resolve
# beside the including file, and facade discipline).

set(MEMDESC_LAYERS "")
set(MEMDESC_LAYER_ROOT ${CMAKE_BINARY_DIR}/layers)

# The layer a public header names in its opening comment ("... Layer: core ..."); fatal if none.
function(memdesc_public_header_layer header out)
  file(STRINGS ${header} lines LIMIT_COUNT 16 ENCODING UTF-8)
  foreach(line IN LISTS lines)
    if(NOT line MATCHES "^//")
      break()
    endif()
    if(line MATCHES "Layer: ([a-z]+)")
      set(${out} ${CMAKE_MATCH_1} PARENT_SCOPE)
      return()
    endif()
  endforeach()
  message(FATAL_ERROR "${header}: its opening comment names no layer (\"Layer: <name>\")")
endfunction()

function(memdesc_layer name)
  cmake_parse_arguments(L "" "" "DEPS;SOURCES;LIBS" ${ARGN})
  # Every layer below, transitively: the deps and what they see.
  set(below ${L_DEPS})
  foreach(dep ${L_DEPS})
    if(NOT dep IN_LIST MEMDESC_LAYERS)
      message(FATAL_ERROR "layer ${name}: depends on ${dep}, which is not defined before it")
    endif()
    list(APPEND below ${MEMDESC_LAYER_BELOW_${dep}})
  endforeach()
  list(REMOVE_DUPLICATES below)
  set(MEMDESC_LAYER_BELOW_${name} ${below} PARENT_SCOPE)
  set(MEMDESC_LAYERS ${MEMDESC_LAYERS} ${name} PARENT_SCOPE)

  set(root ${MEMDESC_LAYER_ROOT}/${name})
  file(REMOVE_RECURSE ${root})
  file(MAKE_DIRECTORY ${root}/memdesc)
  set(visible ${name} ${below})
  foreach(l ${visible})
    if(EXISTS ${PROJECT_SOURCE_DIR}/src/${l})
      file(CREATE_LINK ${PROJECT_SOURCE_DIR}/src/${l} ${root}/${l} SYMBOLIC)
    endif()
  endforeach()
  file(GLOB public CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/include/memdesc/*.hpp)
  foreach(h ${public})
    memdesc_public_header_layer(${h} hl)
    if(hl IN_LIST visible)
      get_filename_component(hn ${h} NAME)
      file(CREATE_LINK ${h} ${root}/memdesc/${hn} SYMBOLIC)
    endif()
  endforeach()

  add_library(memdesc_${name} OBJECT ${L_SOURCES})
  # A layer compiles as one translation unit (unity build): its files are split by concern, but
  # its slow paths still inline the layer's small helpers as they did when the layer was one or
  # two files. The shared library compiles every file on its own, so each stays self-contained.
  set_target_properties(memdesc_${name} PROPERTIES UNITY_BUILD ON UNITY_BUILD_MODE BATCH UNITY_BUILD_BATCH_SIZE 0)
  target_include_directories(memdesc_${name} PRIVATE ${root})
  target_link_libraries(memdesc_${name} PRIVATE memdesc_flags ${L_LIBS})
  set(MEMDESC_LAYER_SOURCES ${MEMDESC_LAYER_SOURCES} ${L_SOURCES} PARENT_SCOPE)
endfunction()
