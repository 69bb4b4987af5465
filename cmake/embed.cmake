# Turns the file IN into a C file OUT defining SYM (a NUL-terminated byte
# array) and SYM_len.
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" n)
math(EXPR len "${n} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
file(WRITE ${OUT} "#include <stddef.h>\nconst unsigned char ${SYM}[] = {${bytes}0x00};\nconst size_t ${SYM}_len = ${len};\n")
