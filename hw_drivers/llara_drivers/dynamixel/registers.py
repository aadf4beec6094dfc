"""Dynamixel X-series control table as data (XL330, XL430, XM430, XM540, XC430).

Rows are (name, address, size in bytes, access "r"/"rw", encoding): "u" unsigned, "s" two's
complement. Addresses from the ROBOTIS e-manual (X series, Protocol 2.0). All multi-byte
values are little-endian; positions are 4096 steps/rev with 2048 at the centre.
"""

from __future__ import annotations

from llara_drivers.servo_wire import ServoModel, table_from_rows

X_ROWS = (
    # EEPROM
    ("Model_Number", 0, 2, "r", "u"),
    ("Model_Information", 2, 4, "r", "u"),
    ("Firmware_Version", 6, 1, "r", "u"),
    ("ID", 7, 1, "rw", "u"),
    ("Baud_Rate", 8, 1, "rw", "u"),
    ("Return_Delay_Time", 9, 1, "rw", "u"),
    ("Drive_Mode", 10, 1, "rw", "u"),
    ("Operating_Mode", 11, 1, "rw", "u"),
    ("Secondary_ID", 12, 1, "rw", "u"),
    ("Protocol_Type", 13, 1, "rw", "u"),
    ("Homing_Offset", 20, 4, "rw", "s"),
    ("Moving_Threshold", 24, 4, "rw", "u"),
    ("Temperature_Limit", 31, 1, "rw", "u"),
    ("Max_Voltage_Limit", 32, 2, "rw", "u"),
    ("Min_Voltage_Limit", 34, 2, "rw", "u"),
    ("PWM_Limit", 36, 2, "rw", "u"),
    ("Current_Limit", 38, 2, "rw", "u"),
    ("Acceleration_Limit", 40, 4, "rw", "u"),
    ("Velocity_Limit", 44, 4, "rw", "u"),
    ("Max_Position_Limit", 48, 4, "rw", "u"),
    ("Min_Position_Limit", 52, 4, "rw", "u"),
    ("Shutdown", 63, 1, "rw", "u"),
    # RAM
    ("Torque_Enable", 64, 1, "rw", "u"),
    ("LED", 65, 1, "rw", "u"),
    ("Status_Return_Level", 68, 1, "rw", "u"),
    ("Registered_Instruction", 69, 1, "r", "u"),
    ("Hardware_Error_Status", 70, 1, "r", "u"),
    ("Velocity_I_Gain", 76, 2, "rw", "u"),
    ("Velocity_P_Gain", 78, 2, "rw", "u"),
    ("Position_D_Gain", 80, 2, "rw", "u"),
    ("Position_I_Gain", 82, 2, "rw", "u"),
    ("Position_P_Gain", 84, 2, "rw", "u"),
    ("Feedforward_2nd_Gain", 88, 2, "rw", "u"),
    ("Feedforward_1st_Gain", 90, 2, "rw", "u"),
    ("Bus_Watchdog", 98, 1, "rw", "u"),
    ("Goal_PWM", 100, 2, "rw", "s"),
    ("Goal_Current", 102, 2, "rw", "s"),
    ("Goal_Velocity", 104, 4, "rw", "s"),
    ("Profile_Acceleration", 108, 4, "rw", "u"),
    ("Profile_Velocity", 112, 4, "rw", "u"),
    ("Goal_Position", 116, 4, "rw", "s"),
    ("Realtime_Tick", 120, 2, "r", "u"),
    ("Moving", 122, 1, "r", "u"),
    ("Moving_Status", 123, 1, "r", "u"),
    ("Present_PWM", 124, 2, "r", "s"),
    ("Present_Current", 126, 2, "r", "s"),
    ("Present_Velocity", 128, 4, "r", "s"),
    ("Present_Position", 132, 4, "r", "s"),
    ("Velocity_Trajectory", 136, 4, "r", "s"),
    ("Position_Trajectory", 140, 4, "r", "s"),
    ("Present_Input_Voltage", 144, 2, "r", "u"),  # 0.1 V
    ("Present_Temperature", 146, 1, "r", "u"),  # deg C
)

X_REGISTERS = table_from_rows(X_ROWS)

# name -> model (model numbers from the e-manual control tables).
MODELS = {
    name: ServoModel(name, number, X_REGISTERS, 4096.0, 2048)
    for name, number in (("xl330-m077", 1190), ("xl330-m288", 1200), ("xl430-w250", 1060),
                         ("xm430-w350", 1020), ("xm540-w270", 1120), ("xc430-w150", 1070))
}

# Baud_Rate register value per line rate.
BAUDRATE_CODES = {9_600: 0, 57_600: 1, 115_200: 2, 1_000_000: 3, 2_000_000: 4, 3_000_000: 5,
                  4_000_000: 6}
