import ezvcard.VCard;
import ezvcard.io.text.VCardReader;
import ezvcard.property.Email;
import ezvcard.property.FormattedName;
import ezvcard.property.Photo;
import ezvcard.property.Telephone;
import java.io.File;

/**
 * Oracle for sdexport's contacts tests: reads each .vcf given with ez-vcard and prints one fact
 * per line, prefixed by the file index: "i cards N", "i warning <text>", "i FN x", "i TEL x",
 * "i EMAIL x", "i PHOTO <size>". The Rust test compares the facts of our output with those of
 * each input, and requires zero warnings on our output.
 */
public class EzFacts {
  public static void main(String[] args) throws Exception {
    StringBuilder out = new StringBuilder();
    for (int i = 0; i < args.length; i++) {
      int cards = 0;
      try (VCardReader r = new VCardReader(new File(args[i]))) {
        VCard c;
        while ((c = r.readNext()) != null) {
          cards++;
          for (Object w : r.getWarnings()) out.append(i).append(" warning ").append(String.valueOf(w).replace('\n', ' ')).append('\n');
          for (FormattedName f : c.getFormattedNames()) if (f.getValue() != null) out.append(i).append(" FN ").append(f.getValue().replace('\n', ' ')).append('\n');
          for (Telephone t : c.getTelephoneNumbers()) out.append(i).append(" TEL ").append(t.getText() != null ? t.getText() : String.valueOf(t.getUri())).append('\n');
          for (Email e : c.getEmails()) if (e.getValue() != null) out.append(i).append(" EMAIL ").append(e.getValue().replace('\n', ' ')).append('\n');
          for (Photo p : c.getPhotos()) if (p.getData() != null) out.append(i).append(" PHOTO ").append(p.getData().length).append('\n');
        }
      } catch (Exception e) {
        out.append(i).append(" error ").append(e).append('\n');
      }
      out.append(i).append(" cards ").append(cards).append('\n');
    }
    System.out.print(out);
  }
}
