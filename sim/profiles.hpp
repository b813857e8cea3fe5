// The constructors behind make_modem() (sim/modem.hpp), one per profile family.
#pragma once

#include <memory>

#include "sim/modem.hpp"

namespace wwan::sim {

// sim/ncm_modem.cpp: CDC NCM function models.
std::unique_ptr<Modem> make_huawei_e3372(const ModemOptions& options);
std::unique_ptr<Modem> make_generic_ncm(const ModemOptions& options);

// sim/mbim_modem.cpp: the MBIM function model (Sierra EM7455-like).
std::unique_ptr<Modem> make_mbim_em7455(const ModemOptions& options);

// sim/rndis_modem.cpp: the Fibocom FM350-GL in USB mode 41 (RNDIS + AT port with the FCC lock).
std::unique_ptr<Modem> make_fm350_rndis(const ModemOptions& options);

// sim/quectel_ncm.cpp: a Quectel RM500Q in usbnet NCM mode (NCM + AT port, QNETDEVCTL, DHCP).
std::unique_ptr<Modem> make_quectel_ncm(const ModemOptions& options);

}  // namespace wwan::sim
