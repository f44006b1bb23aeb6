//! The protobuf wire format: tags, varints, fixed 64-bit values and length-delimited runs.

/// How a field's value is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum WireType {
    Varint,
    Fixed64,
    Len,
    Fixed32,
}

/// Reads a message's fields one by one.
pub(super) struct Reader<'b> {
    bytes: &'b [u8],
}

impl<'b> Reader<'b> {
    pub(super) fn new(bytes: &'b [u8]) -> Reader<'b> {
        Reader { bytes }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// The next field's number and wire type, or `None` at the end.
    pub(super) fn tag(&mut self) -> Result<Option<(u32, WireType)>, String> {
        if self.bytes.is_empty() {
            return Ok(None);
        }
        let tag = self.varint()?;
        let wire_type = match tag & 7 {
            0 => WireType::Varint,
            1 => WireType::Fixed64,
            2 => WireType::Len,
            5 => WireType::Fixed32,
            other => return Err(format!("unsupported wire type {other}")),
        };
        let number = u32::try_from(tag >> 3).map_err(|_| "field number out of range".to_owned())?;
        Ok(Some((number, wire_type)))
    }

    pub(super) fn varint(&mut self) -> Result<u64, String> {
        let mut value = 0u64;
        for (index, byte) in self.bytes.iter().enumerate().take(10) {
            value |= u64::from(byte & 0x7f) << (7 * index);
            if byte & 0x80 == 0 {
                self.bytes = &self.bytes[index + 1..];
                return Ok(value);
            }
        }
        Err("a varint runs past the end".into())
    }

    fn fixed64(&mut self) -> Result<u64, String> {
        let (value, rest) = self.bytes.split_first_chunk::<8>().ok_or("a fixed64 runs past the end")?;
        self.bytes = rest;
        Ok(u64::from_le_bytes(*value))
    }

    pub(super) fn bytes(&mut self) -> Result<&'b [u8], String> {
        let length = usize::try_from(self.varint()?).map_err(|_| "length out of range".to_owned())?;
        if length > self.bytes.len() {
            return Err(format!("a length of {length} runs past the end"));
        }
        let (value, rest) = self.bytes.split_at(length);
        self.bytes = rest;
        Ok(value)
    }

    pub(super) fn string(&mut self) -> Result<String, String> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| "a string is not UTF-8".to_owned())
    }

    pub(super) fn skip(&mut self, wire_type: WireType) -> Result<(), String> {
        match wire_type {
            WireType::Varint => self.varint().map(drop),
            WireType::Fixed64 => self.fixed64().map(drop),
            WireType::Len => self.bytes().map(drop),
            WireType::Fixed32 => {
                let rest = self.bytes.get(4..).ok_or("a fixed32 runs past the end")?;
                self.bytes = rest;
                Ok(())
            }
        }
    }
}

/// Writes a message's fields.
#[derive(Default)]
pub(super) struct Writer {
    bytes: Vec<u8>,
}

impl Writer {
    fn raw_varint(&mut self, mut value: u64) {
        loop {
            let byte = (value & 0x7f) as u8;
            value >>= 7;
            if value == 0 {
                self.bytes.push(byte);
                return;
            }
            self.bytes.push(byte | 0x80);
        }
    }

    fn tag(&mut self, number: u32, wire_type: u64) {
        self.raw_varint((u64::from(number) << 3) | wire_type);
    }

    pub(super) fn varint(&mut self, number: u32, value: u64) {
        self.tag(number, 0);
        self.raw_varint(value);
    }

    pub(super) fn bytes(&mut self, number: u32, value: &[u8]) {
        self.tag(number, 2);
        self.raw_varint(value.len() as u64);
        self.bytes.extend_from_slice(value);
    }

    pub(super) fn string(&mut self, number: u32, value: &str) {
        self.bytes(number, value.as_bytes());
    }

    pub(super) fn finish(self) -> Vec<u8> {
        self.bytes
    }
}
