// The USB layer against REAL libusb on an emulated bus (tests/usbfs/usb_testbed.hpp): discovery,
// port paths, configurations re-serialised from libusb, kernel drivers from sysfs, picking a
// device by VID:PID / path / serial (serials read with a control transfer through usbfs), and
// `wwan-dp list` both in-process and as the real binary.
//
// Run under umockdev-wrapper (meson does). The bench is tests/usbfs/profiles.hpp.
#include <fcntl.h>
#include <glib.h>
#include <glib/gstdio.h>
#include <linux/usb/ch9.h>
#include <linux/usbdevice_fs.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "tests/usbfs/bench.hpp"
#include "tests/usbfs/profiles.hpp"
#include "tests/usbfs/usb_testbed.hpp"
#include "tools/list.hpp"
#include "usb/discovery.hpp"
#include "usb/libusb_context.hpp"

namespace wwan::usbfs_test {

// One testbed for the whole process: umockdev's $UMOCKDEV_DIR is process-wide and libusb caches
// what it found at its first libusb_init. Shared with the other usbfs test files (bench.hpp).
UsbTestbed* g_bed = nullptr;
std::shared_ptr<test::LoopbackDevice> g_loopback;

namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using Json = nlohmann::json;

std::vector<FakeDevice> g_bench;

class BenchEnvironment : public ::testing::Environment {
 public:
  void SetUp() override {
    // The testbed must exist before the first libusb_init in this process.
    g_bed = new UsbTestbed;
    ASSERT_TRUE(UsbTestbed::preloaded())
        << "libumockdev-preload is not loaded: run this under umockdev-wrapper (meson test does)";
    g_loopback = std::make_shared<test::LoopbackDevice>();
    g_bench = standard_bench();
    g_bench.push_back(from_model(kLoopbackPort, kLoopbackDevnum, g_loopback));
    for (const FakeDevice& f : g_bench) g_bed->add(f);
  }
  void TearDown() override {
    delete g_bed;
    g_bed = nullptr;
    g_loopback.reset();
  }
};
[[maybe_unused]] const auto* const g_env = ::testing::AddGlobalTestEnvironment(new BenchEnvironment);

const FakeDevice& bench(const std::string& port_path) {
  for (const FakeDevice& f : g_bench)
    if (f.port_path == port_path) return f;
  throw std::invalid_argument("no bench device at " + port_path);
}

usb::Context open_context() {
  std::string error;
  auto ctx = usb::Context::open(error);
  if (!ctx) throw std::runtime_error(error);
  return std::move(*ctx);
}

std::map<std::string, usb::DeviceInfo> enumerate_by_path(const usb::Context& ctx) {
  std::string error;
  std::map<std::string, usb::DeviceInfo> out;
  for (usb::DeviceInfo& d : usb::enumerate(ctx, error)) out.emplace(d.port_path, std::move(d));
  EXPECT_EQ(error, "");
  return out;
}

std::string vid_pid(const usb::DeviceInfo& d) {
  char s[16];
  std::snprintf(s, sizeof s, "%04x:%04x", d.vendor_id, d.product_id);
  return s;
}

// ------------------------------------------------------------------ the emulated usbfs itself

// The ioctls libusb uses when it has no sysfs (libusb_wrap_sys_device, old kernels) or to claim,
// answered like the kernel does, straight from this process through the preload.
TEST(EmulatedUsbfs, AnswersLikeTheKernel) {
  const int fd = ::open("/dev/bus/usb/001/004", O_RDWR | O_CLOEXEC);  // 1-1.2, the E3372
  ASSERT_GE(fd, 0);
  const unsigned before = g_bed->stats("1-1.2").ioctls;

  EXPECT_EQ(::ioctl(fd, USBDEVFS_GET_SPEED), USB_SPEED_HIGH);

  usbdevfs_connectinfo ci{};
  ASSERT_EQ(::ioctl(fd, USBDEVFS_CONNECTINFO, &ci), 0);
  EXPECT_EQ(ci.devnum, 4u);
  EXPECT_EQ(ci.slow, 0);

  std::uint32_t caps = 0;
  ASSERT_EQ(::ioctl(fd, USBDEVFS_GET_CAPABILITIES, &caps), 0);
  EXPECT_NE(caps & USBDEVFS_CAP_BULK_SCATTER_GATHER, 0u);

  usbdevfs_getdriver gd{};
  gd.interface = 1;
  ASSERT_EQ(::ioctl(fd, USBDEVFS_GETDRIVER, &gd), 0);
  EXPECT_STREQ(gd.driver, "huawei_cdc_ncm");
  gd.interface = 9;
  EXPECT_EQ(::ioctl(fd, USBDEVFS_GETDRIVER, &gd), -1);
  EXPECT_EQ(errno, ENODATA);

  std::uint8_t buf[255] = {};
  usbdevfs_ctrltransfer get_device{USB_DIR_IN, USB_REQ_GET_DESCRIPTOR, USB_DT_DEVICE << 8, 0, sizeof buf, 1000, buf};
  ASSERT_EQ(::ioctl(fd, USBDEVFS_CONTROL, &get_device), 18);
  const Bytes& wire = bench("1-1.2").descriptors;
  EXPECT_TRUE(std::equal(buf, buf + 18, wire.begin()));

  usbdevfs_ctrltransfer get_config{USB_DIR_IN, USB_REQ_GET_DESCRIPTOR, USB_DT_CONFIG << 8, 0, 9, 1000, buf};
  ASSERT_EQ(::ioctl(fd, USBDEVFS_CONTROL, &get_config), 9);  // wLength 9: just the header
  EXPECT_EQ(buf[2] | buf[3] << 8, 225);

  usbdevfs_ctrltransfer get_configuration{USB_DIR_IN, USB_REQ_GET_CONFIGURATION, 0, 0, 1, 1000, buf};
  ASSERT_EQ(::ioctl(fd, USBDEVFS_CONTROL, &get_configuration), 1);
  EXPECT_EQ(buf[0], 1);

  usbdevfs_ctrltransfer vendor{USB_DIR_IN | USB_TYPE_VENDOR, 0x55, 0, 0, 4, 1000, buf};
  EXPECT_EQ(::ioctl(fd, USBDEVFS_CONTROL, &vendor), -1);  // STALL
  EXPECT_EQ(errno, EPIPE);

  void* reaped = nullptr;
  EXPECT_EQ(::ioctl(fd, USBDEVFS_REAPURBNDELAY, &reaped), -1);  // nothing submitted
  EXPECT_EQ(errno, EAGAIN);
  ::close(fd);

  const UsbfsStats s = g_bed->stats("1-1.2");
  EXPECT_EQ(s.ioctls - before, 10u);
  EXPECT_EQ(s.unhandled, 0u);
}

// ------------------------------------------------------------------ discovery

TEST(Discovery, EveryDeviceWithBusAddressAndPortPath) {
  const usb::Context ctx = open_context();
  const auto devices = enumerate_by_path(ctx);
  std::map<std::string, std::string> got;
  for (const auto& [path, d] : devices)
    got[path] = vid_pid(d) + " bus " + std::to_string(d.bus) + " address " + std::to_string(d.address);
  const std::map<std::string, std::string> expected = {
      {"usb1", "1d6b:0002 bus 1 address 1"},  {"1-1", "05e3:0608 bus 1 address 2"},
      {"1-1.1", "046d:c31c bus 1 address 3"}, {"1-1.2", "12d1:1506 bus 1 address 4"},
      {"1-1.4", "1199:9079 bus 1 address 5"}, {"1-2", "12d1:1f01 bus 1 address 6"},
      {"usb2", "1d6b:0003 bus 2 address 1"},  {"2-1", "05c6:9008 bus 2 address 2"},
      {"2-3", "12d1:1506 bus 2 address 3"},   {"2-4", "12d1:1446 bus 2 address 4"},
      {"1-3", "1d50:6018 bus 1 address 7"},  // the loopback of transport_test.cpp
      {"1-1.3", "0525:a4a1 bus 1 address 8"},
  };
  // The hotplug test plugs a second loopback in at 1-5 and unplugs it; whether it ran first
  // depends on the test order, and it must be gone either way.
  EXPECT_EQ(got, expected);
  for (const auto& [path, d] : devices) EXPECT_THAT(d.problems, ::testing::IsEmpty()) << path;
}

TEST(Discovery, PortPathFromBusAndPorts) {
  const std::uint8_t deep[] = {1, 2, 3};
  EXPECT_EQ(usb::port_path(1, deep), "1-1.2.3");
  const std::uint8_t one[] = {4};
  EXPECT_EQ(usb::port_path(12, one), "12-4");
  EXPECT_EQ(usb::port_path(3, {}), "usb3");
}

TEST(Discovery, DeviceDescriptorBytesAsOnTheWire) {
  const usb::Context ctx = open_context();
  for (const auto& [path, d] : enumerate_by_path(ctx)) {
    const Bytes& wire = bench(path).descriptors;
    EXPECT_TRUE(std::equal(d.device_descriptor.begin(), d.device_descriptor.end(), wire.begin())) << path;
  }
}

// libusb hands out parsed structs; discovery writes them back. For devices whose alt settings
// are grouped on the wire (all real ones here) that must give back the exact bytes: IADs (config
// extra), CDC functional descriptors (interface extra), HID and SuperSpeed companion descriptors
// (endpoint extra) included.
TEST(Discovery, EveryConfigurationReserialisedToTheWireBytes) {
  const usb::Context ctx = open_context();
  for (const auto& [path, d] : enumerate_by_path(ctx)) {
    const FakeDevice& f = bench(path);
    ASSERT_EQ(d.configurations.size(), f.descriptors[17]) << path;
    for (const usb::RawConfiguration& c : d.configurations)
      EXPECT_EQ(c.bytes, configuration_bytes(f, c.value)) << path << " configuration " << int{c.value};
  }
}

TEST(Discovery, TwoConfigurationsAndTheActiveOne) {
  const usb::Context ctx = open_context();
  const auto devices = enumerate_by_path(ctx);
  const usb::DeviceInfo& d = devices.at("2-4");
  ASSERT_EQ(d.configurations.size(), 2u);
  EXPECT_EQ(d.configurations[0].value, 1);
  EXPECT_EQ(d.configurations[1].value, 2);
  EXPECT_EQ(d.configurations[1].bytes.size(), 110u);  // D3 wTotalLength
  ASSERT_EQ(d.active_configuration, std::optional<std::uint8_t>(1));
  ASSERT_NE(d.active(), nullptr);
  EXPECT_EQ(d.active()->bytes.size(), 32u);  // D2: configuration 1 is the mass-storage one
  // The parser sees MBIM in the configuration that is not active.
  const auto mbim = usb::parse_configuration(d.configurations[1].bytes, d.vendor_id, d.product_id);
  ASSERT_TRUE(mbim);
  EXPECT_EQ(usb::classify_mode(d.vendor_id, d.product_id, *mbim), usb::ModemMode::Mbim);
}

TEST(Discovery, KernelDriverPerInterfaceFromSysfs) {
  const usb::Context ctx = open_context();
  const auto devices = enumerate_by_path(ctx);
  using D = usb::InterfaceDriver;
  const auto drivers = [&](const std::string& path) {
    std::vector<std::pair<int, std::string>> out;
    for (const D& x : devices.at(path).drivers) out.emplace_back(x.interface_number, x.driver.value_or("(none)"));
    return out;
  };
  using P = std::pair<int, std::string>;
  EXPECT_THAT(drivers("1-1.2"), ElementsAre(P{0, "option"}, P{1, "huawei_cdc_ncm"}, P{2, "option"}, P{3, "option"},
                                            P{4, "usb-storage"}, P{5, "usb-storage"}));
  EXPECT_THAT(drivers("2-3"), ElementsAre(P{0, "option"}, P{1, "(none)"}, P{2, "option"}, P{3, "option"},
                                          P{4, "usb-storage"}, P{5, "usb-storage"}));
  EXPECT_THAT(drivers("1-1.4"), ElementsAre(P{12, "cdc_mbim"}, P{13, "cdc_mbim"}));
  EXPECT_THAT(drivers("2-1"), ElementsAre(P{0, "(none)"}));
  EXPECT_THAT(drivers("1-1.1"), ElementsAre(P{0, "usbhid"}, P{1, "usbhid"}));
  EXPECT_THAT(drivers("usb1"), ElementsAre(P{0, "hub"}));
}

TEST(Discovery, KernelDriverUnderAnExplicitSysfsRoot) {
  // The same lookup with the sysfs root given explicitly (the testbed's real directory, no
  // redirection involved), and with one that has nothing in it.
  EXPECT_EQ(usb::kernel_driver(g_bed->sys_dir(), "1-1.4", 1, 12), std::optional<std::string>("cdc_mbim"));
  EXPECT_EQ(usb::kernel_driver(g_bed->sys_dir(), "1-1.2", 1, 1), std::optional<std::string>("huawei_cdc_ncm"));
  EXPECT_EQ(usb::kernel_driver(g_bed->sys_dir(), "2-1", 1, 0), std::nullopt);
  EXPECT_EQ(usb::kernel_driver(g_bed->sys_dir(), "1-1.2", 2, 1), std::nullopt);  // no such configuration
  EXPECT_EQ(usb::kernel_driver("/nonexistent", "1-1.2", 1, 1), std::nullopt);

  const usb::Context ctx = open_context();
  std::string error;
  for (const usb::DeviceInfo& d : usb::enumerate(ctx, error, {g_bed->sys_dir()}))
    if (d.port_path == "1-1.4") {
      EXPECT_EQ(d.drivers.at(0).driver, std::optional<std::string>("cdc_mbim"));
    }
}

TEST(Discovery, StringsFromSysfs) {
  const usb::Context ctx = open_context();
  const auto devices = enumerate_by_path(ctx);
  EXPECT_EQ(devices.at("1-1.2").manufacturer, std::optional<std::string>("HUAWEI"));
  EXPECT_EQ(devices.at("1-1.2").product, std::optional<std::string>("HUAWEI Mobile"));
  EXPECT_EQ(devices.at("1-1.2").serial, std::optional<std::string>("E3372-A"));
  EXPECT_EQ(devices.at("2-1").serial, std::nullopt);  // QDL has no iSerialNumber
}

TEST(Discovery, EnumerationOpensNoDevice) {
  const auto before = g_bed->stats("1-1.2").ioctls;
  const usb::Context ctx = open_context();
  enumerate_by_path(ctx);
  EXPECT_EQ(g_bed->stats("1-1.2").ioctls, before);  // everything came from sysfs
}

// ------------------------------------------------------------------ picking a device

TEST(Select, ParseVidPid) {
  std::string error;
  EXPECT_EQ(usb::parse_vid_pid("12d1:1506", error), (usb::VidPid{0x12d1, 0x1506}));
  EXPECT_EQ(usb::parse_vid_pid("0x12D1:0X1506", error), (usb::VidPid{0x12d1, 0x1506}));
  EXPECT_EQ(usb::parse_vid_pid("5c6:9008", error), (usb::VidPid{0x05c6, 0x9008}));
  EXPECT_EQ(error, "");
  for (const char* bad : {"12d1", "12d1:", ":1506", "12g1:1506", "12d1:15060", "12d1:1506:1", "", "12d1-1506",
                          " 12d1:1506"}) {
    error.clear();
    EXPECT_EQ(usb::parse_vid_pid(bad, error), std::nullopt) << bad;
    EXPECT_THAT(error, HasSubstr("'" + std::string(bad) + "' is not a USB VID:PID")) << bad;
    EXPECT_THAT(error, HasSubstr("e.g. 12d1:1506")) << bad;
  }
  usb::parse_vid_pid("12d1", error);
  EXPECT_THAT(error, HasSubstr("no ':'"));
  usb::parse_vid_pid("12d1:15060", error);
  EXPECT_THAT(error, HasSubstr("product id is not 1 to 4 hex digits"));
}

usb::DeviceSelector selector(std::uint16_t vid, std::uint16_t pid, std::optional<std::string> path = {},
                             std::optional<std::string> serial = {}) {
  return {{vid, pid}, std::move(path), std::move(serial)};
}

TEST(Select, OneMatch) {
  const usb::Context ctx = open_context();
  std::string error;
  const auto d = usb::find_device(ctx, selector(0x1199, 0x9079), error);
  ASSERT_TRUE(d) << error;
  EXPECT_EQ(d->port_path, "1-1.4");
}

TEST(Select, NoSuchDevice) {
  const usb::Context ctx = open_context();
  std::string error;
  EXPECT_FALSE(usb::find_device(ctx, selector(0x1234, 0x5678), error));
  EXPECT_THAT(error, HasSubstr("no USB device 1234:5678 is present"));
  EXPECT_THAT(error, HasSubstr("wwan-dp list"));
}

TEST(Select, SeveralMatchWithoutNarrowingIsAnErrorThatListsThem) {
  const usb::Context ctx = open_context();
  std::string error;
  EXPECT_FALSE(usb::find_device(ctx, selector(0x12d1, 0x1506), error));
  EXPECT_THAT(error, HasSubstr("2 USB devices are 12d1:1506"));
  EXPECT_THAT(error, HasSubstr("1-1.2 (serial E3372-A), 2-3 (serial E3372-B)"));
  EXPECT_THAT(error, HasSubstr("port path"));
  EXPECT_THAT(error, HasSubstr("serial number"));
}

TEST(Select, NarrowedByPortPath) {
  const usb::Context ctx = open_context();
  std::string error;
  const auto d = usb::find_device(ctx, selector(0x12d1, 0x1506, "2-3"), error);
  ASSERT_TRUE(d) << error;
  EXPECT_EQ(d->serial, std::optional<std::string>("E3372-B"));

  EXPECT_FALSE(usb::find_device(ctx, selector(0x12d1, 0x1506, "3-1"), error));
  EXPECT_THAT(error, HasSubstr("no USB device 12d1:1506 at 3-1; 12d1:1506 is at 1-1.2 (serial E3372-A), 2-3"));
}

TEST(Select, NarrowedBySerialReadFromTheDevice) {
  const usb::Context ctx = open_context();
  const std::size_t strings_before = g_bed->stats("1-1.2").string_indexes.size();
  std::string error;
  const auto d = usb::find_device(ctx, selector(0x12d1, 0x1506, std::nullopt, "E3372-A"), error);
  ASSERT_TRUE(d) << error;
  EXPECT_EQ(d->port_path, "1-1.2");
  // libusb asked the device: language ids (index 0), then iSerialNumber (3), over usbfs.
  const UsbfsStats s = g_bed->stats("1-1.2");
  ASSERT_GE(s.string_indexes.size(), strings_before + 2);
  EXPECT_THAT(std::vector<std::uint8_t>(s.string_indexes.end() - 2, s.string_indexes.end()), ElementsAre(0, 3));
  EXPECT_EQ(s.unhandled, 0u);
}

TEST(Select, SerialFallsBackToSysfsWhenTheDeviceDoesNotAnswer) {
  // 2-3's node has no usbfs behind it: the control transfer fails, the kernel's copy is used.
  const usb::Context ctx = open_context();
  std::string error;
  const auto d = usb::find_device(ctx, selector(0x12d1, 0x1506, std::nullopt, "E3372-B"), error);
  ASSERT_TRUE(d) << error;
  EXPECT_EQ(d->port_path, "2-3");

  EXPECT_FALSE(usb::find_device(ctx, selector(0x12d1, 0x1506, std::nullopt, "nope"), error));
  EXPECT_THAT(error, HasSubstr("no USB device 12d1:1506 with serial number nope"));
}

TEST(Select, ReadSerialOverUsbfs) {
  const usb::Context ctx = open_context();
  const auto devices = enumerate_by_path(ctx);
  std::string error;
  const std::size_t strings_before = g_bed->stats("1-1.4").string_indexes.size();
  EXPECT_EQ(usb::read_serial(ctx, devices.at("1-1.4"), error), std::optional<std::string>("LQ62750110021011"));
  EXPECT_EQ(error, "");
  const std::vector<std::uint8_t> asked = g_bed->stats("1-1.4").string_indexes;
  EXPECT_THAT(std::vector<std::uint8_t>(asked.begin() + static_cast<std::ptrdiff_t>(strings_before), asked.end()),
              ElementsAre(0, 3));  // from the device, not from sysfs
  EXPECT_EQ(usb::read_serial(ctx, devices.at("2-1"), error), std::nullopt);
  EXPECT_THAT(error, HasSubstr("05c6:9008 at 2-1 has no serial number"));
  EXPECT_EQ(g_bed->stats("1-1.4").unhandled, 0u);
}

TEST(Select, SelectDeviceIsPureOverTheList) {
  usb::DeviceInfo a, b;
  a.vendor_id = b.vendor_id = 0x12d1;
  a.product_id = b.product_id = 0x1506;
  a.port_path = "1-1";
  b.port_path = "1-2";
  const std::vector<usb::DeviceInfo> list = {a, b};
  const usb::SerialOf serial_of = [](const usb::DeviceInfo& d) {
    return std::optional<std::string>(d.port_path == "1-2" ? "S2" : "S1");
  };
  std::string error;
  const auto got = usb::select_device(list, selector(0x12d1, 0x1506, std::nullopt, "S2"), serial_of, error);
  ASSERT_TRUE(got) << error;
  EXPECT_EQ(got->port_path, "1-2");
  EXPECT_FALSE(usb::select_device(list, selector(0x12d1, 0x1506), serial_of, error));
  EXPECT_THAT(error, HasSubstr("2 USB devices are 12d1:1506: 1-1, 1-2; say which one by its port path (e.g. 1-1)"));
}

TEST(Select, OpenErrorsSayWhatToDo) {
  // libusb.h error codes (stable ABI): ACCESS -3, NO_DEVICE -4, BUSY -6, IO -1.
  const std::string access = usb::open_error_text(-3, 1, 4, "12d1:1506 at 1-1.2");
  EXPECT_THAT(access, HasSubstr("no permission to open /dev/bus/usb/001/004 (12d1:1506 at 1-1.2)"));
  EXPECT_THAT(access, HasSubstr("run wwan-dp as root, or add a udev rule"));
  EXPECT_THAT(usb::open_error_text(-4, 1, 4, "12d1:1506 at 1-1.2"), HasSubstr("run wwan-dp list again"));
  EXPECT_THAT(usb::open_error_text(-6, 2, 10, "x"), HasSubstr("/dev/bus/usb/002/010 (x): it is busy"));
  EXPECT_THAT(usb::open_error_text(-1, 1, 1, "x"), HasSubstr("LIBUSB_ERROR_IO"));
}

// ------------------------------------------------------------------ wwan-dp list

struct ExpectedInterface {
  int number;
  const char *cls, *subclass, *protocol, *function;
  std::optional<std::string> driver;
};

void expect_interfaces(const Json& interfaces, const std::vector<ExpectedInterface>& expected, const std::string& who) {
  ASSERT_EQ(interfaces.size(), expected.size()) << who << ": " << interfaces.dump();
  for (std::size_t i = 0; i < expected.size(); ++i) {
    const Json& f = interfaces[i];
    const ExpectedInterface& e = expected[i];
    const std::string at = who + " interface " + std::to_string(e.number);
    EXPECT_EQ(f.at("number"), e.number) << at;
    EXPECT_EQ(f.at("class"), e.cls) << at;
    EXPECT_EQ(f.at("subclass"), e.subclass) << at;
    EXPECT_EQ(f.at("protocol"), e.protocol) << at;
    EXPECT_EQ(f.at("function"), e.function) << at;
    if (e.driver) EXPECT_EQ(f.at("driver"), *e.driver) << at;
    else EXPECT_TRUE(f.at("driver").is_null()) << at;
    EXPECT_EQ(f.size(), 6u) << at << ": " << f.dump();
  }
}

// Checks a `list --json` document against the bench, field by field.
void expect_bench_json(const std::string& text) {
  const Json doc = Json::parse(text);
  ASSERT_TRUE(doc.is_array()) << text;
  std::map<std::string, Json> by_path;
  for (const Json& m : doc) by_path[m.at("bus_path").get<std::string>()] = m;
  // Keyboard, hub and root hubs are not modems.
  std::vector<std::string> paths;
  for (const auto& [path, m] : by_path) paths.push_back(path);
  ASSERT_THAT(paths, ElementsAre("1-1.2", "1-1.3", "1-1.4", "1-2", "2-1", "2-3", "2-4")) << text;

  const auto head = [&](const std::string& path, const char* vid, const char* pid, Json configuration,
                        const char* mode, bool supported) {
    const Json& m = by_path.at(path);
    EXPECT_EQ(m.at("vid"), vid) << path;
    EXPECT_EQ(m.at("pid"), pid) << path;
    EXPECT_EQ(m.at("configuration"), configuration) << path;
    EXPECT_EQ(m.at("mode"), mode) << path;
    EXPECT_EQ(m.at("supported"), supported) << path;
    EXPECT_EQ(m.size(), 7u) << path << ": " << m.dump();
  };
  head("1-1.2", "12d1", "1506", 1, "huawei-ncm", true);
  expect_interfaces(by_path.at("1-1.2").at("interfaces"),
                    {{0, "ff", "03", "01", "modem", "option"},
                     {1, "ff", "03", "16", "huawei-ncm", "huawei_cdc_ncm"},
                     {2, "ff", "03", "03", "diag", "option"},
                     {3, "ff", "03", "02", "at", "option"},
                     {4, "08", "06", "50", "mass-storage", "usb-storage"},
                     {5, "08", "06", "50", "mass-storage", "usb-storage"}},
                    "1-1.2");
  head("2-3", "12d1", "1506", 1, "huawei-ncm", true);
  expect_interfaces(by_path.at("2-3").at("interfaces"),
                    {{0, "ff", "03", "01", "modem", "option"},
                     {1, "ff", "03", "16", "huawei-ncm", std::nullopt},
                     {2, "ff", "03", "03", "diag", "option"},
                     {3, "ff", "03", "02", "at", "option"},
                     {4, "08", "06", "50", "mass-storage", "usb-storage"},
                     {5, "08", "06", "50", "mass-storage", "usb-storage"}},
                    "2-3");
  head("1-1.3", "0525", "a4a1", 1, "ncm", true);
  expect_interfaces(by_path.at("1-1.3").at("interfaces"),
                    {{0, "02", "0d", "00", "ncm", "cdc_ncm"}, {1, "0a", "00", "01", "cdc-data", "cdc_ncm"}}, "1-1.3");
  head("1-1.4", "1199", "9079", 1, "mbim", true);
  expect_interfaces(by_path.at("1-1.4").at("interfaces"),
                    {{12, "02", "0e", "00", "mbim", "cdc_mbim"}, {13, "0a", "00", "02", "cdc-data", "cdc_mbim"}},
                    "1-1.4");
  head("1-2", "12d1", "1f01", 1, "mass-storage", false);
  expect_interfaces(by_path.at("1-2").at("interfaces"),
                    {{0, "08", "06", "50", "mass-storage", "usb-storage"},
                     {1, "08", "06", "50", "mass-storage", "usb-storage"}},
                    "1-2");
  head("2-1", "05c6", "9008", 1, "qdl", false);
  expect_interfaces(by_path.at("2-1").at("interfaces"), {{0, "ff", "ff", "ff", "qdl", std::nullopt}}, "2-1");
  head("2-4", "12d1", "1446", 1, "mass-storage", false);
  expect_interfaces(by_path.at("2-4").at("interfaces"), {{0, "08", "06", "50", "mass-storage", "usb-storage"}},
                    "2-4");
}

int run_list(std::vector<std::string_view> args, std::string& out, std::string& err) {
  std::ostringstream o, e;
  const int status = cli::run_list(args, o, e);
  out = o.str();
  err = e.str();
  return status;
}

TEST(List, JsonInProcess) {
  std::string out, err;
  ASSERT_EQ(run_list({"--json"}, out, err), 0) << err;
  EXPECT_EQ(err, "");
  expect_bench_json(out);
}

// The rows a person reads, with the table's spacing collapsed.
std::vector<std::string> squeezed_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    std::string s;
    for (const char c : line)
      if (c != ' ' || (!s.empty() && s.back() != ' ')) s += c;
    while (!s.empty() && s.back() == ' ') s.pop_back();
    lines.push_back(s);
  }
  return lines;
}

void expect_bench_table(const std::string& text) {
  const auto lines = squeezed_lines(text);
  using ::testing::Contains;
  EXPECT_THAT(lines, Contains("12d1:1506 at 1-1.2 (HUAWEI Mobile), configuration 1: huawei-ncm, supported")) << text;
  EXPECT_THAT(lines, Contains("IF CLASS FUNCTION DRIVER"));
  EXPECT_THAT(lines, Contains("0 ff/03/01 modem option"));
  EXPECT_THAT(lines, Contains("1 ff/03/16 huawei-ncm huawei_cdc_ncm"));
  EXPECT_THAT(lines, Contains("1 ff/03/16 huawei-ncm -"));  // 2-3: nothing bound
  EXPECT_THAT(lines, Contains("3 ff/03/02 at option"));
  EXPECT_THAT(lines, Contains("4 08/06/50 mass-storage usb-storage"));
  EXPECT_THAT(lines, Contains(
                         "1199:9079 at 1-1.4 (Sierra Wireless EM7455 Qualcomm Snapdragon X7 LTE-A), "
                         "configuration 1: mbim, supported"));
  EXPECT_THAT(lines, Contains("12 02/0e/00 mbim cdc_mbim"));
  EXPECT_THAT(lines, Contains("13 0a/00/02 cdc-data cdc_mbim"));
  EXPECT_THAT(lines, Contains(HasSubstr("12d1:1f01 at 1-2 (HUAWEI_MOBILE), configuration 1: mass-storage, not supported: "
                                        "switch it to modem mode first (usb_modeswitch)")));
  EXPECT_THAT(lines, Contains(HasSubstr("05c6:9008 at 2-1 (QHSUSB__BULK), configuration 1: qdl, not supported")));
  EXPECT_THAT(lines, Contains("0 ff/ff/ff qdl -"));
  EXPECT_THAT(text, Not(HasSubstr("046d:c31c")));  // keyboard
  EXPECT_THAT(text, Not(HasSubstr("05e3:0608")));  // hub
  EXPECT_THAT(text, Not(HasSubstr("1d6b:")));      // root hubs
  EXPECT_THAT(text, Not(HasSubstr("usbhid")));
}

TEST(List, TableInProcess) {
  std::string out, err;
  ASSERT_EQ(run_list({}, out, err), 0) << err;
  expect_bench_table(out);
}

TEST(List, UsageErrors) {
  std::string out, err;
  EXPECT_EQ(run_list({"--jsn"}, out, err), 2);
  EXPECT_THAT(err, HasSubstr("unknown argument '--jsn'"));
  EXPECT_EQ(run_list({"--help"}, out, err), 0);
  EXPECT_THAT(out, HasSubstr("usage: wwan-dp list [--json]"));
}

TEST(List, NoModemSaysSo) {
  EXPECT_EQ([] {
    std::ostringstream o;
    cli::write_list_table({}, o);
    return o.str();
  }(), "no USB modem found\n");
  std::ostringstream o;
  cli::write_list_json({}, o);
  EXPECT_EQ(o.str(), "[]\n");
}

TEST(List, JsonEscapesSysfsStrings) {
  cli::ListedModem m;
  m.vendor_id = 0x12d1;
  m.product_id = 0x1506;
  m.bus_path = "1-1";
  m.mode = usb::ModemMode::HuaweiNcm;
  m.interfaces.push_back({1, 0xff, 0x03, 0x16, usb::Function::HuaweiNcm, std::string("we\"ird\\drv\n")});
  std::ostringstream o;
  cli::write_list_json(std::span(&m, 1), o);
  const Json doc = Json::parse(o.str());
  EXPECT_EQ(doc.at(0).at("interfaces").at(0).at("driver"), "we\"ird\\drv\n");
  EXPECT_EQ(doc.at(0).at("configuration"), nullptr);
}

// ------------------------------------------------------------------ the real binary

struct BinaryRun {
  int status = -1;
  std::string out, err;
};

// Runs build/tools/wwan-dp (path from $WWAN_DP_EXE) with this process's environment, so it sees
// the same emulated bus; `umockdev_dir` replaces $UMOCKDEV_DIR when given.
BinaryRun run_binary(std::vector<std::string> args, const char* umockdev_dir = nullptr) {
  const char* exe = std::getenv("WWAN_DP_EXE");
  if (exe == nullptr) throw std::runtime_error("WWAN_DP_EXE is not set (meson test sets it)");
  std::vector<char*> argv;
  std::string exe_s = exe;
  argv.push_back(exe_s.data());
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  gchar** env = g_get_environ();
  if (umockdev_dir != nullptr) env = g_environ_setenv(env, "UMOCKDEV_DIR", umockdev_dir, TRUE);
  gchar *out = nullptr, *err = nullptr;
  gint wait_status = 0;
  GError* error = nullptr;
  const gboolean ok = g_spawn_sync(nullptr, argv.data(), env, G_SPAWN_DEFAULT, nullptr, nullptr, &out, &err,
                                   &wait_status, &error);
  g_strfreev(env);
  if (!ok) {
    const std::string msg = error->message;
    g_error_free(error);
    throw std::runtime_error("spawn " + exe_s + ": " + msg);
  }
  BinaryRun r;
  r.status = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 128 + WTERMSIG(wait_status);
  r.out = out;
  r.err = err;
  g_free(out);
  g_free(err);
  return r;
}

TEST(ListBinary, JsonMatchesTheBenchAndTheInProcessOutput) {
  const BinaryRun r = run_binary({"list", "--json"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "");
  expect_bench_json(r.out);
  std::string in_process, err;
  run_list({"--json"}, in_process, err);
  EXPECT_EQ(r.out, in_process);
}

TEST(ListBinary, Table) {
  const BinaryRun r = run_binary({"list"});
  ASSERT_EQ(r.status, 0) << r.err;
  expect_bench_table(r.out);
}

TEST(ListBinary, MachineWithoutUsb) {
  // An empty emulated machine: no /sys/bus/usb, no /dev/bus/usb (like the CI machines).
  gchar* dir = g_dir_make_tmp("wwan-dp-nousb-XXXXXX", nullptr);
  ASSERT_NE(dir, nullptr);
  const std::string sys = std::string(dir) + "/sys";
  ASSERT_EQ(g_mkdir(sys.c_str(), 0755), 0);
  const BinaryRun table = run_binary({"list"}, dir);
  const BinaryRun json = run_binary({"list", "--json"}, dir);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);  // umockdev's preload leaves its uevent socket in there
  EXPECT_FALSE(ec) << ec.message();
  g_free(dir);
  EXPECT_EQ(table.status, 0) << table.err;
  EXPECT_EQ(table.out, "no USB modem found\n");
  EXPECT_EQ(json.status, 0) << json.err;
  EXPECT_EQ(json.out, "[]\n");
}

TEST(ListBinary, UsageError) {
  const BinaryRun r = run_binary({"list", "--bogus"});
  EXPECT_EQ(r.status, 2);
  EXPECT_THAT(r.err, HasSubstr("wwan-dp list: unknown argument '--bogus'"));
}

}  // namespace
}  // namespace wwan::usbfs_test
