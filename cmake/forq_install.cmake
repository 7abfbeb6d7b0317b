# `cmake --install`: the forq executable, the library with its headers, and a CMake package so
# that another project's find_package(forq) gives it forq::forq (docs/cpp-api.md).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS forq RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
install(TARGETS forq_lib EXPORT forqTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(DIRECTORY include/forq DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

set(FORQ_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/forq)
install(EXPORT forqTargets NAMESPACE forq:: FILE forqTargets.cmake
  DESTINATION ${FORQ_CMAKE_DIR})
configure_package_config_file(cmake/forqConfig.cmake.in
  ${CMAKE_CURRENT_BINARY_DIR}/forqConfig.cmake INSTALL_DESTINATION ${FORQ_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_CURRENT_BINARY_DIR}/forqConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_CURRENT_BINARY_DIR}/forqConfig.cmake
  ${CMAKE_CURRENT_BINARY_DIR}/forqConfigVersion.cmake DESTINATION ${FORQ_CMAKE_DIR})
