// libFuzzer target: the USB descriptor parser and classifier on arbitrary bytes.
//
// Input layout: idVendor (2 bytes LE), idProduct (2 bytes LE), then the descriptor bytes. The seeds
// in corpus/descriptors are the real configurations of tests/usb/descriptors_test.cpp in that
// layout (that test checks they stay equal). The rest of the input is parsed as a device
// descriptor, as one configuration and as a run of configurations (the sysfs layout), and every
// result is classified. ASan/UBSan catch reads outside the input; the checks below catch results
// that point at things that do not exist.
#include <cstdint>
#include <cstdlib>
#include <set>
#include <vector>

#include "tests/fuzz/fuzz_check.hpp"

#include "usb/descriptors.hpp"

namespace {

using namespace wwan::usb;

void check(const Configuration& c, std::uint16_t vid, std::uint16_t pid) {
  FUZZ_CHECK(c.problems.size() <= kMaxProblems + 1);
  for (std::size_t i = 1; i < c.interfaces.size(); ++i) FUZZ_CHECK(c.interfaces[i - 1].number < c.interfaces[i].number);
  for (const Interface& i : c.interfaces) {
    FUZZ_CHECK(!i.alt_settings.empty());
    std::set<std::uint8_t> alts;
    for (const AltSetting& a : i.alt_settings) FUZZ_CHECK(alts.insert(a.alternate).second);
    FUZZ_CHECK(i.alt(i.function_alt_setting) != nullptr);
    FUZZ_CHECK(to_string(i.function) != nullptr);
    if (i.data_interface) {
      const Interface* data = c.interface(*i.data_interface);
      FUZZ_CHECK(data != nullptr);
      if (i.data_alt_setting) {
        FUZZ_CHECK(data->alt(*i.data_alt_setting) != nullptr);
        FUZZ_CHECK(data->alt(*i.data_alt_setting)->has_bulk_pair());
      }
    } else {
      FUZZ_CHECK(!i.data_alt_setting);
    }
  }
  const ModemMode mode = classify_mode(vid, pid, c);
  FUZZ_CHECK(to_string(mode) != nullptr);
  (void)is_drivable(mode);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 4) return 0;
  const auto vid = static_cast<std::uint16_t>(data[0] | data[1] << 8);
  const auto pid = static_cast<std::uint16_t>(data[2] | data[3] << 8);
  // An exactly-sized copy, so that ASan sees the real end of the descriptors.
  const std::vector<std::uint8_t> bytes(data + 4, data + size);
  const Bytes raw(bytes);

  if (const auto d = parse_device_descriptor(raw)) FUZZ_CHECK(raw.size() >= kDeviceDescriptorSize);
  if (const auto c = parse_configuration(raw, vid, pid)) check(*c, vid, pid);
  for (const Configuration& c : parse_configurations(raw, vid, pid)) check(c, vid, pid);
  return 0;
}
