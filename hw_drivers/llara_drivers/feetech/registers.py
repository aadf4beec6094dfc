"""Feetech control tables as data: STS/SMS series (STS3215, SO-100/SO-101) and SCS series.

Rows are (name, address, size in bytes, access "r"/"rw", encoding). Encoding "u" is unsigned,
"smN" sign-magnitude with the sign at bit N (the servo firmware's convention for positions in
multi-turn mode, velocities, load and offsets). Addresses from the Feetech STS and SCSCL
manuals (the same values LeRobot's feetech tables use). Multi-byte order is a property of the
model (`big_endian`): STS little-endian, SCS big-endian.
"""

from __future__ import annotations

from llara_drivers.servo_wire import ServoModel, table_from_rows

STS_ROWS = (
    # EEPROM
    ("Firmware_Major_Version", 0, 1, "r", "u"),
    ("Firmware_Minor_Version", 1, 1, "r", "u"),
    ("Model_Number", 3, 2, "r", "u"),
    ("ID", 5, 1, "rw", "u"),
    ("Baud_Rate", 6, 1, "rw", "u"),
    ("Return_Delay_Time", 7, 1, "rw", "u"),
    ("Response_Status_Level", 8, 1, "rw", "u"),
    ("Min_Position_Limit", 9, 2, "rw", "u"),
    ("Max_Position_Limit", 11, 2, "rw", "u"),
    ("Max_Temperature_Limit", 13, 1, "rw", "u"),
    ("Max_Voltage_Limit", 14, 1, "rw", "u"),
    ("Min_Voltage_Limit", 15, 1, "rw", "u"),
    ("Max_Torque_Limit", 16, 2, "rw", "u"),
    ("Phase", 18, 1, "rw", "u"),
    ("Unloading_Condition", 19, 1, "rw", "u"),
    ("LED_Alarm_Condition", 20, 1, "rw", "u"),
    ("P_Coefficient", 21, 1, "rw", "u"),
    ("D_Coefficient", 22, 1, "rw", "u"),
    ("I_Coefficient", 23, 1, "rw", "u"),
    ("Minimum_Startup_Force", 24, 2, "rw", "u"),
    ("CW_Dead_Zone", 26, 1, "rw", "u"),
    ("CCW_Dead_Zone", 27, 1, "rw", "u"),
    ("Protection_Current", 28, 2, "rw", "u"),
    ("Angular_Resolution", 30, 1, "rw", "u"),
    ("Homing_Offset", 31, 2, "rw", "sm11"),
    ("Operating_Mode", 33, 1, "rw", "u"),
    ("Protective_Torque", 34, 1, "rw", "u"),
    ("Protection_Time", 35, 1, "rw", "u"),
    ("Overload_Torque", 36, 1, "rw", "u"),
    ("Velocity_P_Coefficient", 37, 1, "rw", "u"),
    ("Over_Current_Protection_Time", 38, 1, "rw", "u"),
    ("Velocity_I_Coefficient", 39, 1, "rw", "u"),
    # SRAM
    ("Torque_Enable", 40, 1, "rw", "u"),
    ("Acceleration", 41, 1, "rw", "u"),
    ("Goal_Position", 42, 2, "rw", "sm15"),
    ("Goal_Time", 44, 2, "rw", "u"),
    ("Goal_Velocity", 46, 2, "rw", "sm15"),
    ("Torque_Limit", 48, 2, "rw", "u"),
    ("Lock", 55, 1, "rw", "u"),
    ("Present_Position", 56, 2, "r", "sm15"),
    ("Present_Velocity", 58, 2, "r", "sm15"),
    ("Present_Load", 60, 2, "r", "sm10"),
    ("Present_Voltage", 62, 1, "r", "u"),  # 0.1 V
    ("Present_Temperature", 63, 1, "r", "u"),  # deg C
    ("Status", 65, 1, "r", "u"),  # same bits as the status error byte
    ("Moving", 66, 1, "r", "u"),
    ("Present_Current", 69, 2, "r", "sm15"),
)

SCS_ROWS = (
    ("Firmware_Major_Version", 0, 1, "r", "u"),
    ("Firmware_Minor_Version", 1, 1, "r", "u"),
    ("Model_Number", 3, 2, "r", "u"),
    ("ID", 5, 1, "rw", "u"),
    ("Baud_Rate", 6, 1, "rw", "u"),
    ("Return_Delay_Time", 7, 1, "rw", "u"),
    ("Response_Status_Level", 8, 1, "rw", "u"),
    ("Min_Position_Limit", 9, 2, "rw", "u"),
    ("Max_Position_Limit", 11, 2, "rw", "u"),
    ("Max_Temperature_Limit", 13, 1, "rw", "u"),
    ("Max_Voltage_Limit", 14, 1, "rw", "u"),
    ("Min_Voltage_Limit", 15, 1, "rw", "u"),
    ("Max_Torque_Limit", 16, 2, "rw", "u"),
    ("Phase", 18, 1, "rw", "u"),
    ("Unloading_Condition", 19, 1, "rw", "u"),
    ("LED_Alarm_Condition", 20, 1, "rw", "u"),
    ("P_Coefficient", 21, 1, "rw", "u"),
    ("D_Coefficient", 22, 1, "rw", "u"),
    ("I_Coefficient", 23, 1, "rw", "u"),
    ("Minimum_Startup_Force", 24, 2, "rw", "u"),
    ("CW_Dead_Zone", 26, 1, "rw", "u"),
    ("CCW_Dead_Zone", 27, 1, "rw", "u"),
    ("Protective_Torque", 37, 1, "rw", "u"),
    ("Protection_Time", 38, 1, "rw", "u"),
    ("Torque_Enable", 40, 1, "rw", "u"),
    ("Acceleration", 41, 1, "rw", "u"),
    ("Goal_Position", 42, 2, "rw", "u"),
    ("Running_Time", 44, 2, "rw", "u"),
    ("Goal_Velocity", 46, 2, "rw", "u"),
    ("Lock", 48, 1, "rw", "u"),
    ("Present_Position", 56, 2, "r", "u"),
    ("Present_Velocity", 58, 2, "r", "sm15"),
    ("Present_Load", 60, 2, "r", "sm10"),
    ("Present_Voltage", 62, 1, "r", "u"),
    ("Present_Temperature", 63, 1, "r", "u"),
    ("Status", 65, 1, "r", "u"),
    ("Moving", 66, 1, "r", "u"),
)

STS_REGISTERS = table_from_rows(STS_ROWS)
SCS_REGISTERS = table_from_rows(SCS_ROWS)

# name -> model. STS3215: 4096 steps/rev, centre 2048. SCS0009: 0..1023 over 300 degrees.
MODELS = {
    "sts3215": ServoModel("sts3215", 777, STS_REGISTERS, 4096.0, 2048, big_endian=False),
    "sts3250": ServoModel("sts3250", 2825, STS_REGISTERS, 4096.0, 2048, big_endian=False),
    "scs0009": ServoModel("scs0009", 1284, SCS_REGISTERS, 1024 * 360 / 300, 512,
                          big_endian=True),
}

# Baud_Rate register value per line rate (both series).
BAUDRATE_CODES = {1_000_000: 0, 500_000: 1, 250_000: 2, 128_000: 3, 115_200: 4, 57_600: 5,
                  38_400: 6, 19_200: 7}
