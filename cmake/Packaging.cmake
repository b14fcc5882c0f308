# CPack: two Debian packages from the install components, built by deploy/package.sh.
#   mimic-agent  the daemon, its hardened systemd unit, /etc/mimic/agent.toml (conffile), a system
#                user and its state dir (postinst), man page, bash completion
#   mimic        the controller, examples, make-certs.sh, the Ansible role, man page, completion
# Runtime dependencies come from dpkg-shlibdeps: Debian's own library packages.
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME mimic)
set(CPACK_PACKAGE_VENDOR "mimic")
set(CPACK_PACKAGE_CONTACT "mimic maintainers <mimic@localhost>")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "migrate fleets of WSO2 Micro Integrator servers")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
set(CPACK_COMPONENTS_ALL agent controller)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SECTION admin)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_RELEASE 1)

set(CPACK_DEBIAN_AGENT_PACKAGE_NAME mimic-agent)
set(CPACK_COMPONENT_AGENT_DESCRIPTION
    "mimic agent: runs migration steps on a WSO2 Micro Integrator host\n The daemon the mimic controller drives over gRPC with mutual TLS. It runs each\n migration step locally, journals it, snapshots what it replaces and can roll back.")
# libgit2 is loaded on the first diff (common/base/text_diff), so shlibdeps does not see it.
string(REGEX MATCH "^[0-9]+\\.[0-9]+" MIMIC_LIBGIT2_PACKAGE_ABI "${LIBGIT2_VERSION}")
set(CPACK_DEBIAN_AGENT_PACKAGE_DEPENDS "adduser, openssl, libgit2-${MIMIC_LIBGIT2_PACKAGE_ABI}")
set(CPACK_DEBIAN_AGENT_PACKAGE_SUGGESTS "default-jre-headless")
set(CPACK_DEBIAN_AGENT_PACKAGE_CONTROL_EXTRA
    ${CMAKE_SOURCE_DIR}/deploy/debian/agent/postinst
    ${CMAKE_SOURCE_DIR}/deploy/debian/agent/prerm
    ${CMAKE_SOURCE_DIR}/deploy/debian/agent/postrm
    ${CMAKE_SOURCE_DIR}/deploy/debian/agent/conffiles)
set(CPACK_DEBIAN_AGENT_PACKAGE_CONTROL_STRICT_PERMISSION TRUE)

set(CPACK_DEBIAN_CONTROLLER_PACKAGE_NAME mimic)
set(CPACK_COMPONENT_CONTROLLER_DESCRIPTION
    "mimic controller: staged, audited migrations of WSO2 Micro Integrator fleets\n Sends each host its plan, rolls out stage by stage with failure budgets and\n approval gates, and keeps a tamper-evident audit (SQLite or PostgreSQL).")
set(CPACK_DEBIAN_CONTROLLER_PACKAGE_DEPENDS "openssl")
set(CPACK_DEBIAN_CONTROLLER_PACKAGE_SUGGESTS "ansible-core")

include(CPack)
