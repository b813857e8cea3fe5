// The DNS servers the network assigned, as a resolv.conf-format file (for resolvconf(8),
// systemd-resolved's foreign file mode, dnsmasq's resolv-file, or /etc/resolv.conf itself).
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "datapath/ethernet.hpp"

namespace wwan::tun {

// Pure: "# written by wwan-dp for <ifname>\n" then "nameserver X\n" per address, IPv4 first.
// Control characters in `ifname` (which cannot be in a valid interface name) become '?', so the
// file is always a comment line plus nameserver lines.
std::string format_resolv_conf(std::string_view ifname, std::span<const eth::Ipv4Address> v4,
                               std::span<const eth::Ipv6Address> v6);

// Atomic: writes PATH.tmp (mode 0644, O_NOFOLLOW), fsyncs it, renames it over PATH, fsyncs the
// directory. Readers see the old file or the new one, never a partial one. false + one line in
// `error` on failure (PATH.tmp is removed).
bool write_resolv_conf(const std::string& path, std::string_view ifname, std::span<const eth::Ipv4Address> v4,
                       std::span<const eth::Ipv6Address> v6, std::string& error);

// Deletes PATH if wwan-dp wrote it (its first line starts with "# written by wwan-dp"). A missing
// file is fine (true); a file someone else wrote since is left alone (false + why).
bool remove_resolv_conf(const std::string& path, std::string& error);

}  // namespace wwan::tun
