# Installs the header, the library, a CMake package (find_package(spattn) -> spattn::spattn)
# and a pkg-config file whose --static libs link a static build.
include(CMakePackageConfigHelpers)

install(TARGETS spattn EXPORT spattnTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR}
  INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(FILES ${PROJECT_SOURCE_DIR}/include/spattn.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

set(SPATTN_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/spattn)
install(EXPORT spattnTargets NAMESPACE spattn:: DESTINATION ${SPATTN_CMAKE_DIR})
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/spattnConfig.cmake.in
  ${PROJECT_BINARY_DIR}/spattnConfig.cmake INSTALL_DESTINATION ${SPATTN_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/spattnConfigVersion.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/spattnConfig.cmake
  ${PROJECT_BINARY_DIR}/spattnConfigVersion.cmake DESTINATION ${SPATTN_CMAKE_DIR})

# OpenMP's flag for the linker as the C compiler spells it (-fopenmp for gcc and clang).
set(SPATTN_PC_OPENMP "${OpenMP_C_FLAGS}")
# The prefix as seen from the installed file (pkg-config's ${pcfiledir}), so that
# `cmake --install <build> --prefix <dir>` gives a correct file for any <dir>, not only the
# prefix the build was configured with. Absolute install directories stay as they are.
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(SPATTN_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
  set(SPATTN_PC_LIBDIR "${CMAKE_INSTALL_FULL_LIBDIR}")
  set(SPATTN_PC_INCLUDEDIR "${CMAKE_INSTALL_FULL_INCLUDEDIR}")
else()
  file(RELATIVE_PATH up "/p/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/p")
  string(REGEX REPLACE "/$" "" up "${up}")
  set(SPATTN_PC_PREFIX "\${pcfiledir}/${up}")
  set(SPATTN_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
  set(SPATTN_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
configure_file(${CMAKE_CURRENT_LIST_DIR}/spattn.pc.in ${PROJECT_BINARY_DIR}/spattn.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/spattn.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
