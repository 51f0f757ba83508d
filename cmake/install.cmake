# Installation: headers, libmemdesc.a (+ libmemdesc.so), the CMake package (find_package(memdesc)
# gives memdesc::memdesc, and memdesc::memdesc_static) and memdesc.pc for pkg-config.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(DIRECTORY include/memdesc DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} FILES_MATCHING PATTERN "*.hpp")
install(TARGETS ${_installed} EXPORT memdescTargets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
        INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

set(_cmakedir ${CMAKE_INSTALL_LIBDIR}/cmake/memdesc)
install(EXPORT memdescTargets NAMESPACE memdesc:: DESTINATION ${_cmakedir})
configure_package_config_file(cmake/memdescConfig.cmake.in ${CMAKE_BINARY_DIR}/memdescConfig.cmake
                              INSTALL_DESTINATION ${_cmakedir})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/memdescConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/memdescConfig.cmake ${CMAKE_BINARY_DIR}/memdescConfigVersion.cmake
        DESTINATION ${_cmakedir})

# memdesc.pc names its prefix relative to itself, so an installed tree can move.
file(RELATIVE_PATH MEMDESC_PC_TO_PREFIX ${CMAKE_INSTALL_FULL_LIBDIR}/pkgconfig ${CMAKE_INSTALL_PREFIX})
string(REGEX REPLACE "/$" "" MEMDESC_PC_TO_PREFIX "${MEMDESC_PC_TO_PREFIX}")
# Without libmemdesc.so, `pkg-config --libs memdesc` links the static library: its dependencies too.
set(MEMDESC_PC_STATIC_LIBS "")
if(NOT MEMDESC_BUILD_SHARED)
  set(MEMDESC_PC_STATIC_LIBS " -lurcu-common -lurcu-memb -llz4 -lzstd")
endif()
configure_file(cmake/memdesc.pc.in ${CMAKE_BINARY_DIR}/memdesc.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/memdesc.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
