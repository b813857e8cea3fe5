// The emulated modems (1-1.2, 1-1.3, 1-1.4) are sim::Modem models served by the usbfs handler:
// class requests, AT / MBIM, bulk data and faults behave as the models do.
//
// Emulated devices for the usbfs tests, written from real devices' descriptor dumps
// (../shared/reference/vectors/usb_descriptors.md, usb_modeswitch_huawei.md) and from what
// Linux shows for them in sysfs (drivers per interface, port paths).
//
// The standard bench (standard_bench) is one machine with all of them at once:
//   bus 1: usb1 root hub 1d6b:0002
//          1-1    hub 05e3:0608
//          1-1.1  keyboard 046d:c31c (usbhid)                      not a modem
//          1-1.2  Huawei E3372 12d1:1506, serial E3372-A (D2)       huawei-ncm
//          1-1.3  generic CDC NCM 0525:a4a1 (Linux's NCM gadget)     ncm
//          1-1.4  Sierra EM7455 1199:9079, MBIM on 12/13 (D5/D6)    mbim
//          1-2    Huawei stick in ZeroCD mode 12d1:1f01             mass-storage
//   bus 2: usb2 root hub 1d6b:0003 (SuperSpeed: endpoint companion descriptor)
//          2-1    Qualcomm QDL 05c6:9008, no driver                 qdl
//          2-3    second E3372 12d1:1506, serial E3372-B; its node has no usbfs handler
//                 and huawei_cdc_ncm is not bound                   huawei-ncm
//          2-4    Huawei 12d1:1446 (D2/D3): config 1 mass storage (active), config 2 MBIM
#pragma once

#include <vector>

#include "tests/usbfs/usb_testbed.hpp"

namespace wwan::usbfs_test {

FakeDevice root_hub(unsigned bus, unsigned speed_mbps);
FakeDevice genesys_hub(const std::string& port_path, std::uint8_t devnum);
FakeDevice logitech_keyboard(const std::string& port_path, std::uint8_t devnum);
FakeDevice huawei_e3372_ncm(const std::string& port_path, std::uint8_t devnum, const std::string& serial);
FakeDevice sierra_em7455_mbim(const std::string& port_path, std::uint8_t devnum);
FakeDevice huawei_zerocd_1f01(const std::string& port_path, std::uint8_t devnum);
FakeDevice qualcomm_qdl_9008(const std::string& port_path, std::uint8_t devnum);
FakeDevice huawei_1446_two_configs(const std::string& port_path, std::uint8_t devnum);
FakeDevice generic_ncm(const std::string& port_path, std::uint8_t devnum);

// The configuration blob with bConfigurationValue `value` inside fake.descriptors.
Bytes configuration_bytes(const FakeDevice& fake, std::uint8_t value);

// Every device of the bench above, parents first.
std::vector<FakeDevice> standard_bench();

}  // namespace wwan::usbfs_test
